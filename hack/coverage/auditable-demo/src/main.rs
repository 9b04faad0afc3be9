//! Reads words from the arguments and prints those that look like versions, as JSON.

use smallvec::SmallVec;

fn main() {
    let version = regex::Regex::new(r"^\d+(\.\d+)*$").expect("a valid pattern");
    let found: SmallVec<[String; 4]> = std::env::args()
        .skip(1)
        .filter(|a| version.is_match(a))
        .collect();
    println!("{}", serde_json::json!({ "versions": found.as_slice() }));
}
