//! Helpers shared by the fuzz targets in `src/bin/`: each target hands the input to one
//! parser of the scanner and ignores its result, so only a panic, an overflow (checks are
//! on in the release profile here) or a hang is reported by the fuzzer.

/// Splits `data` in two at a point read from its first two bytes (little-endian, modulo
/// the rest's length), for parsers that take two inputs (a database and its WAL).
pub fn split(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<2>() else {
        return (data, &[]);
    };
    let at = usize::from(u16::from_le_bytes(*head)) % (rest.len() + 1);
    rest.split_at(at)
}
