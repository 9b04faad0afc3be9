//! The language metadata files, the parser chosen by the first byte (modulo 6): npm's
//! package.json, PyPI's METADATA, a gemspec, Composer's installed.json, a .NET deps.json and
//! Maven's pom.properties.

use palisade_scanner::inventory::language::{dotnet, maven, npm, php, python, ruby};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((first, rest)) = data.split_first() else {
            return;
        };
        match first % 6 {
            0 => drop(npm::read("app/node_modules/x/package.json", rest)),
            1 => drop(python::read(
                "usr/lib/python3/site-packages/x-1.0.dist-info/METADATA",
                rest,
            )),
            2 => drop(ruby::read(
                "usr/lib/ruby/gems/3.1.0/specifications/x-1.0.gemspec",
                rest,
            )),
            3 => drop(php::read("app/vendor/composer/installed.json", rest)),
            4 => drop(dotnet::read("app/x.deps.json", rest)),
            _ => drop(maven::read(
                "app/x.jar!META-INF/maven/g/a/pom.properties",
                rest,
            )),
        }
    });
}
