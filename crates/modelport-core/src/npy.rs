//! Reads and writes NumPy `.npy` files (format versions 1–3, C order).
//!
//! Supported element types: `<f4`, `<f8`, `<i8`, `<i4`, `|i1`, `|u1`, `|b1`.
//! Fortran-ordered arrays and object arrays are refused with the reason.

use std::io::{Read, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor, TensorData};

const MAGIC: &[u8] = b"\x93NUMPY";

/// Reads a `.npy` file.
pub fn read_file(path: &Path) -> Result<Tensor> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    read(std::io::BufReader::new(file))
        .map_err(|e| Error::decode("npy", format!("{}: {}", path.display(), describe(&e))))
}

fn describe(e: &Error) -> String {
    match e {
        Error::Decode { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Reads `.npy` bytes.
pub fn read(mut r: impl Read) -> Result<Tensor> {
    let bad = |m: &str| Error::decode("npy", m.to_string());
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)
        .map_err(|_| bad("file is shorter than the .npy header"))?;
    if &magic[..6] != MAGIC {
        return Err(bad("not a .npy file (missing the \\x93NUMPY magic)"));
    }
    let header_len = match magic[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(|_| bad("truncated header"))?;
            u16::from_le_bytes(b) as usize
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(|_| bad("truncated header"))?;
            u32::from_le_bytes(b) as usize
        }
        v => return Err(bad(&format!("unsupported .npy format version {v}"))),
    };
    // As with the data below, read what is there rather than allocate the claim:
    // a version 2 or 3 header length is 4 bytes, so 12 bytes may claim 4 GiB.
    let mut header = Vec::new();
    (&mut r)
        .take(header_len as u64)
        .read_to_end(&mut header)
        .map_err(|e| bad(&format!("cannot read the header: {e}")))?;
    if header.len() != header_len {
        return Err(bad(&format!(
            "truncated header: it claims {header_len} bytes, the file has {}",
            header.len()
        )));
    }
    let header = String::from_utf8_lossy(&header);
    let descr = dict_value(&header, "descr").ok_or_else(|| bad("header has no `descr`"))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    if dict_value(&header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err(bad(
            "Fortran-ordered arrays are not supported; save with numpy.ascontiguousarray",
        ));
    }
    let shape_text = dict_value(&header, "shape").ok_or_else(|| bad("header has no `shape`"))?;
    let shape: Vec<usize> = shape_text
        .trim_start_matches('(')
        .split(')')
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| bad(&format!("bad shape `{shape_text}`")))
        })
        .collect::<Result<_>>()?;
    let (dtype, size) = match descr {
        "<f4" => (DType::F32, 4),
        "<f8" => (DType::F64, 8),
        "<i8" => (DType::I64, 8),
        "<i4" => (DType::I32, 4),
        "|i1" => (DType::I8, 1),
        "|u1" => (DType::U8, 1),
        "|b1" => (DType::Bool, 1),
        other => {
            return Err(bad(&format!(
                "unsupported dtype `{other}` (supported: <f4, <f8, <i8, <i4, |i1, |u1, |b1)"
            )));
        }
    };
    let needed = crate::tensor::element_count(&shape)
        .and_then(|n| n.checked_mul(size))
        .ok_or_else(|| bad(&format!("shape {shape:?} is too large to be data")))?;
    // Read what is there, up to what the header claims, instead of allocating the
    // claim first: a 100-byte file may say it holds a terabyte.
    let mut bytes = Vec::new();
    r.take(needed as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(&format!("cannot read the data: {e}")))?;
    if bytes.len() != needed {
        return Err(bad(&format!(
            "data is truncated: shape {shape:?} needs {needed} bytes, the file has {}",
            bytes.len()
        )));
    }
    let data = from_le_bytes(bytes, dtype).expect("strings are refused above");
    Tensor::new(shape, data)
}

/// The elements of `bytes`, little-endian and packed (`.npy` and the Open Inference
/// Protocol's binary data lay them out alike; bool is one byte, nonzero true). The
/// caller has checked that the length is a whole number of elements; `None` for
/// strings, which have no fixed width.
pub(crate) fn from_le_bytes(bytes: Vec<u8>, dtype: DType) -> Option<TensorData> {
    fn le<const N: usize, T>(bytes: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
        bytes
            .chunks_exact(N)
            .map(|c| f(c.try_into().expect("chunks_exact yields N bytes")))
            .collect()
    }
    Some(match dtype {
        DType::F32 => TensorData::F32(le(&bytes, f32::from_le_bytes)),
        DType::F64 => TensorData::F64(le(&bytes, f64::from_le_bytes)),
        DType::I64 => TensorData::I64(le(&bytes, i64::from_le_bytes)),
        DType::I32 => TensorData::I32(le(&bytes, i32::from_le_bytes)),
        DType::I8 => TensorData::I8(bytes.iter().map(|&b| b as i8).collect()),
        DType::U8 => TensorData::U8(bytes),
        DType::Bool => TensorData::Bool(bytes.iter().map(|&b| b != 0).collect()),
        DType::String => return None,
    })
}

/// The elements of `data`, little-endian and packed; `None` for strings.
pub(crate) fn to_le_bytes(data: &TensorData) -> Option<Vec<u8>> {
    Some(match data {
        TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::I8(v) => v.iter().map(|&x| x as u8).collect(),
        TensorData::U8(v) => v.clone(),
        TensorData::Bool(v) => v.iter().map(|&x| x as u8).collect(),
        TensorData::String(_) => return None,
    })
}

/// The text after `'key':` in a Python dict literal, up to the next top-level comma.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    let mut depth = 0;
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(rest[..i].trim()),
            _ => {}
        }
    }
    Some(rest.trim())
}

/// Writes a tensor as `.npy` (version 1.0); strings are refused.
pub fn write(t: &Tensor, mut w: impl Write) -> Result<()> {
    let descr = match t.dtype() {
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::I64 => "<i8",
        DType::I32 => "<i4",
        DType::I8 => "|i1",
        DType::U8 => "|u1",
        DType::Bool => "|b1",
        DType::String => return Err(Error::invalid("string tensors cannot be written as .npy")),
    };
    let shape = match t.shape() {
        [one] => format!("({one},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while !(MAGIC.len() + 4 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let io = |e| Error::io("<npy>", e);
    w.write_all(MAGIC).map_err(io)?;
    w.write_all(&[1, 0]).map_err(io)?;
    w.write_all(&(header.len() as u16).to_le_bytes())
        .map_err(io)?;
    w.write_all(header.as_bytes()).map_err(io)?;
    let bytes = to_le_bytes(t.data()).expect("strings are refused above");
    w.write_all(&bytes).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_numeric_dtypes() {
        let cases: Vec<TensorData> = vec![
            vec![1.5f32, -2.0, 3.25, 4.0, 5.0, 6.0].into(),
            vec![1.5f64, -2.0, 3.25, 4.0, 5.0, 6.0].into(),
            vec![1i64, -2, 3, 4, 5, 6].into(),
            vec![1i32, -2, 3, 4, 5, 6].into(),
            vec![1i8, -2, 3, 4, 5, 6].into(),
            vec![1u8, 2, 3, 4, 5, 255].into(),
            vec![true, false, true, false, true, true].into(),
        ];
        for data in cases {
            let t = Tensor::new(vec![2, 3], data).unwrap();
            let mut buf = Vec::new();
            write(&t, &mut buf).unwrap();
            assert_eq!(read(&buf[..]).unwrap(), t);
        }
    }

    #[test]
    fn reads_numpy_written_header() {
        // numpy.save of np.arange(3, dtype=np.int64) (header as numpy 2 writes it).
        let mut bytes =
            b"\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }"
                .to_vec();
        while bytes.len() < 127 {
            bytes.push(b' ');
        }
        bytes.push(b'\n');
        for x in 0i64..3 {
            bytes.extend(x.to_le_bytes());
        }
        assert_eq!(
            read(&bytes[..]).unwrap(),
            Tensor::new(vec![3], vec![0i64, 1, 2]).unwrap()
        );
    }

    #[test]
    fn refuses_bad_files() {
        assert!(read(&b"hello"[..]).is_err());
        let mut buf = Vec::new();
        write(&Tensor::new(vec![4], vec![1f32; 4]).unwrap(), &mut buf).unwrap();
        buf.truncate(buf.len() - 3);
        assert!(
            read(&buf[..])
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
    }

    /// Found by the `npy` fuzz target: a version 3 header claiming a 1.5 GB header
    /// length made the reader allocate that much before finding the file 13 bytes
    /// long. The header is now read as far as the file goes.
    #[test]
    fn claimed_header_lengths_are_not_trusted() {
        let err = read(&b"\x93NUMPY\x03\x00vMPY\x00"[..])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("truncated header: it claims 1498434934 bytes, the file has 1"),
            "{err}"
        );
    }

    /// A header may claim any shape: one that overflows is refused, and one that
    /// claims far more than the file holds is read as far as the file goes (nothing
    /// is allocated from the claim).
    #[test]
    fn claimed_shapes_are_not_trusted() {
        let npy = |shape: &str| {
            let header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
            let mut b = b"\x93NUMPY\x01\x00".to_vec();
            b.extend_from_slice(&(header.len() as u16).to_le_bytes());
            b.extend_from_slice(header.as_bytes());
            b.extend_from_slice(&[0u8; 8]);
            b
        };
        let err = read(&npy("(4294967296, 4294967296, 16)")[..])
            .unwrap_err()
            .to_string();
        assert!(err.contains("too large"), "{err}");
        let err = read(&npy("(1000000000000,)")[..]).unwrap_err().to_string();
        assert!(
            err.contains("needs 4000000000000 bytes, the file has 8"),
            "{err}"
        );
        assert_eq!(
            read(&npy("(2,)")[..]).unwrap(),
            Tensor::new(vec![2], vec![0f32; 2]).unwrap()
        );
    }
}
