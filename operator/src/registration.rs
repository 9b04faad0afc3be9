//! The ValidatingWebhookConfiguration the operator owns.
