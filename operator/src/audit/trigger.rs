//! When to audit again: a policy's generation changed, appeared or went away.

use std::collections::HashMap;

use kube::ResourceExt;
use kube::core::DynamicObject;
use kube::runtime::watcher;

/// Track generations; true when one appeared, changed or went away (after the first
/// listing, which only fills the map).
pub fn generation_changed(
    generations: &mut HashMap<String, i64>,
    primed: &mut bool,
    event: watcher::Event<DynamicObject>,
) -> bool {
    let generation = |o: &DynamicObject| o.metadata.generation.unwrap_or(0);
    match event {
        watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
            let new = generation(&o);
            match generations.insert(o.name_any(), new) {
                Some(old) => old != new,
                None => *primed,
            }
        }
        watcher::Event::Delete(o) => generations.remove(&o.name_any()).is_some(),
        watcher::Event::Init => false,
        watcher::Event::InitDone => {
            *primed = true;
            false
        }
    }
}
