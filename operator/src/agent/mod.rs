//! The node agent as the operator manages it: its DaemonSet planned from the chart's
//! settings ([`daemonset`]), the fleet of agents summed up for the SecurityPolicies' status
//! ([`fleet`]), and the loop that keeps the one and watches the other ([`run`]).

pub mod daemonset;
pub mod fleet;
pub mod run;
