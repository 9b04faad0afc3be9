//! Checks version comparison against the package managers themselves on large generated
//! sets of version pairs: `dpkg --compare-versions` and rpm's `rpm.vercmp`. Both tools
//! must be installed (`hack/scan-tools.sh`); a missing tool fails the test. apk-tools is
//! not available on Debian, so apk ordering is covered by the tables in its module.

use std::cmp::Ordering;
use std::io::Write;
use std::process::{Command, Stdio};

use palisade_scanner::version::{dpkg, rpm};

/// A small deterministic PRNG (xorshift64*) so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Digit runs that exercise numeric comparison: zeros, leading zeros, and runs longer
/// than any 64-bit integer.
fn digits(rng: &mut Rng, out: &mut String) {
    match rng.below(10) {
        0 => out.push_str(rng.pick(&["0", "00", "000", "007", "010"])),
        1 => {
            // Beyond u64: 20 to 30 digits, sometimes with leading zeros.
            if rng.chance(30) {
                out.push('0');
            }
            out.push_str(rng.pick(&["1", "18446744073709551615", "9"]));
            for _ in 0..rng.below(12) + 2 {
                out.push(char::from(b'0' + rng.below(10) as u8));
            }
        }
        _ => {
            for _ in 0..rng.below(3) + 1 {
                out.push(char::from(b'0' + rng.below(10) as u8));
            }
        }
    }
}

/// A version built from pieces of `alphabet` (separators and letters) and digit runs.
fn version_body(rng: &mut Rng, alphabet: &[&str], out: &mut String) {
    if rng.chance(92) {
        digits(rng, out);
    } else {
        out.push_str(rng.pick(&["a", "z", "A"]));
    }
    for _ in 0..rng.below(6) {
        if rng.chance(45) {
            digits(rng, out);
        } else {
            out.push_str(rng.pick(alphabet));
        }
    }
}

/// A small edit of `v`: the near-equal pairs are the interesting ones.
fn mutate(rng: &mut Rng, v: &str, alphabet: &[&str]) -> String {
    let mut out = String::from(v);
    match rng.below(5) {
        0 => out.push_str(rng.pick(alphabet)),
        1 => digits(rng, &mut out),
        2 => {
            let cut = rng.below(out.len() + 1);
            if out.is_char_boundary(cut) {
                out.truncate(cut);
                out.push_str(rng.pick(alphabet));
            }
        }
        3 => out = out.replacen('.', rng.pick(alphabet), 1),
        _ => {
            if let Some(i) = out.find(|c: char| c.is_ascii_digit()) {
                out.insert(i, '0');
            }
        }
    }
    out
}

fn require_tool(name: &str) {
    let found = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "{name} is not installed: run hack/scan-tools.sh");
}

/// Runs `f` over `items` on a few threads, keeping the order of results.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = 4;
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(|| part.iter().map(&f).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker thread"))
            .collect()
    })
}

fn dpkg_status(a: &str, op: &str, b: &str) -> i32 {
    let status = Command::new("dpkg")
        .args(["--compare-versions", a, op, b])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run dpkg: run hack/scan-tools.sh");
    status.code().unwrap_or(-1)
}

/// dpkg's order of `a` and `b`, or `None` when dpkg refuses one of them.
fn dpkg_order(a: &str, b: &str) -> Option<Ordering> {
    match dpkg_status(a, "lt", b) {
        0 => Some(Ordering::Less),
        1 => match dpkg_status(a, "eq", b) {
            0 => Some(Ordering::Equal),
            1 => Some(Ordering::Greater),
            _ => None,
        },
        _ => None,
    }
}

const DPKG_ALPHABET: &[&str] = &[
    ".", ".", "+", "~", "~", "-", "a", "b", "z", "A", "Z", "rc", "dfsg", "deb12u", "ubuntu", ":",
    "_", "^", "é",
];

#[test]
fn dpkg_matches_dpkg_compare_versions() {
    require_tool("dpkg");
    let started = std::time::Instant::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    // Families of a base version and small edits of it, so neighbours are near-equal.
    let mut candidates = Vec::new();
    while candidates.len() < 1600 {
        let mut base = String::new();
        if rng.chance(20) {
            digits(&mut rng, &mut base);
            base.truncate(9);
            base.push(':');
        }
        version_body(&mut rng, DPKG_ALPHABET, &mut base);
        if rng.chance(50) {
            base.push('-');
            version_body(&mut rng, &[".", "+", "~", "a", "ubuntu", "deb"], &mut base);
        }
        candidates.push(base.clone());
        for _ in 0..3 {
            let edit = mutate(&mut rng, &base, DPKG_ALPHABET);
            candidates.push(edit);
        }
    }
    // Keep what dpkg accepts (warnings included: dpkg still compares those). Versions
    // starting with '-' would be taken for options.
    let accepted = parallel(&candidates, |v| {
        !v.starts_with('-') && dpkg_status(v, "eq", v) == 0
    });
    let pool: Vec<&str> = candidates
        .iter()
        .zip(&accepted)
        .filter(|(_, ok)| **ok)
        .map(|(v, _)| v.as_str())
        .collect();
    // Our comparison must not panic on the rejected ones either.
    for v in &candidates {
        let _ = dpkg::compare(v, "1.0");
    }

    let mut pairs = Vec::new();
    for i in 0..pool.len() {
        pairs.push((pool[i], pool[(i + 1) % pool.len()]));
        pairs.push((pool[i], pool[rng.below(pool.len())]));
    }
    let results = parallel(&pairs, |&(a, b)| dpkg_order(a, b));
    let mut checked = 0;
    let mut counts = [0usize; 3];
    let mut wrong = Vec::new();
    for (&(a, b), want) in pairs.iter().zip(results) {
        let Some(want) = want else { continue };
        checked += 1;
        counts[(want as i8 + 1) as usize] += 1;
        let got = dpkg::compare(a, b);
        if got != want {
            wrong.push(format!("{a:?} vs {b:?}: dpkg {want:?}, ours {got:?}"));
        }
    }
    println!(
        "dpkg: {checked} pairs of {} accepted versions checked in {:.1?} \
         (less/equal/greater: {counts:?})",
        pool.len(),
        started.elapsed()
    );
    assert!(checked > 2000, "too few pairs checked: {checked}");
    assert!(
        wrong.is_empty(),
        "{} of {checked} pairs differ from dpkg:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

const RPM_ALPHABET: &[&str] = &[
    ".", ".", "+", "_", "~", "~", "^", "^", "-", "a", "b", "z", "A", "Z", "rc", "el", "git", "fc",
    "p", ":", "é",
];

#[test]
fn rpm_matches_rpm_vercmp() {
    require_tool("rpm");
    let started = std::time::Instant::now();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);

    let mut pool = Vec::new();
    while pool.len() < 8000 {
        let mut base = String::new();
        if rng.chance(20) {
            digits(&mut rng, &mut base);
            base.push(':');
        }
        version_body(&mut rng, RPM_ALPHABET, &mut base);
        if rng.chance(60) {
            base.push('-');
            version_body(&mut rng, &[".", "_", "~", "^", "el", "fc", "a"], &mut base);
        }
        pool.push(base.clone());
        for _ in 0..3 {
            pool.push(mutate(&mut rng, &base, RPM_ALPHABET));
        }
    }
    // rpm.vercmp refuses empty strings.
    pool.retain(|v| !v.is_empty());

    let mut pairs = Vec::new();
    for i in 0..pool.len() {
        pairs.push((pool[i].as_str(), pool[(i + 1) % pool.len()].as_str()));
        pairs.push((pool[i].as_str(), pool[rng.below(pool.len())].as_str()));
    }

    // One rpm process for all pairs: its Lua reads them from a file, one pair a line.
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("pairs");
    let output = dir.path().join("results");
    let mut file = std::fs::File::create(&input).expect("create pairs file");
    for (a, b) in &pairs {
        writeln!(file, "{a} {b}").expect("write pairs file");
    }
    drop(file);
    // No '%' in the script: rpm would take it for a macro.
    let script = format!(
        "%{{lua: local out = io.open('{out}', 'w') \
         for line in io.lines('{inp}') do \
           local sp = string.find(line, ' ', 1, true) \
           out:write(rpm.vercmp(string.sub(line, 1, sp - 1), string.sub(line, sp + 1)), '\\n') \
         end \
         out:close()}}",
        out = output.display(),
        inp = input.display(),
    );
    let run = Command::new("rpm")
        .args(["--eval", &script])
        .output()
        .expect("run rpm: run hack/scan-tools.sh");
    assert!(
        run.status.success(),
        "rpm --eval failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let results = std::fs::read_to_string(&output).expect("read rpm results");
    let results: Vec<&str> = results.lines().collect();
    assert_eq!(results.len(), pairs.len(), "rpm answered every pair");

    let mut counts = [0usize; 3];
    let mut wrong = Vec::new();
    for (&(a, b), result) in pairs.iter().zip(&results) {
        let want = match *result {
            "-1" => Ordering::Less,
            "0" => Ordering::Equal,
            "1" => Ordering::Greater,
            other => panic!("rpm.vercmp({a:?}, {b:?}) answered {other:?}"),
        };
        counts[(want as i8 + 1) as usize] += 1;
        let got = rpm::compare(a, b);
        if got != want {
            wrong.push(format!("{a:?} vs {b:?}: rpm {want:?}, ours {got:?}"));
        }
    }
    println!(
        "rpm: {} pairs checked in {:.1?} (less/equal/greater: {counts:?})",
        pairs.len(),
        started.elapsed()
    );
    assert!(
        wrong.is_empty(),
        "{} of {} pairs differ from rpm:\n{}",
        wrong.len(),
        pairs.len(),
        wrong.join("\n")
    );
}
