//! Where comparison inputs come from: a file in any accepted form, or generated from
//! the signature with a seed.

use std::io::Read;
use std::path::Path;

use modelport_core::signature::DimsDisplay;
use modelport_core::{Batch, Error, Signature, Tensor, TensorData, codec, npy};

/// Reads inputs for `signature` from `path`: JSON in either wire form
/// (`{"instances": ...}` or `{"inputs": ...}`), `.npy` (single-input models), `.csv`
/// with a header, or `-` for JSON on stdin. Errors name the file.
pub fn read_inputs(path: &Path, signature: &Signature) -> Result<Batch, Error> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("npy") => {
            let [only] = signature.inputs.as_slice() else {
                return Err(Error::invalid(format!(
                    "{}: a .npy file holds one tensor, but the model has {} inputs; use JSON with named inputs",
                    path.display(),
                    signature.inputs.len()
                )));
            };
            let tensor = npy::read_file(path)?;
            Batch::new().with(only.name.clone(), tensor)
        }
        Some("csv") => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            read_csv(&text, signature)
                .map_err(|m| Error::decode("CSV", format!("{}: {m}", path.display())))
        }
        _ => decode_json(&read_json(path)?, path, signature),
    }
}

/// The JSON value in `path` (`-`: stdin); errors name the file.
pub fn read_json(path: &Path) -> Result<serde_json::Value, Error> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Error::io("<stdin>", e))?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?
    };
    serde_json::from_str(&text)
        .map_err(|e| Error::decode("JSON", format!("{}: {e}", path.display())))
}

/// Inputs for `signature` from a JSON body in either wire form, read from `path`.
pub fn decode_json(
    body: &serde_json::Value,
    path: &Path,
    signature: &Signature,
) -> Result<Batch, Error> {
    let (batch, _) = codec::decode_request(body, &signature.inputs).map_err(|e| {
        Error::invalid(format!(
            "{}: the inputs do not fit the model: {e}",
            path.display()
        ))
    })?;
    Ok(batch)
}

/// Reads a CSV file with a header into one tensor per input.
///
/// A column belongs to an input when its header is the input's name (one value per
/// row) or `name[i]`, `name_i` or `name.i` (element `i` of the row). A model with a
/// single input also takes any header whose column count equals the input's row
/// length, in column order (feature names such as `sepal_length`).
pub fn read_csv(text: &str, signature: &Signature) -> Result<Batch, String> {
    csv_batch(&parse_csv(text)?, signature)
}

/// A CSV file's header and records, before they are matched to a model's inputs.
#[derive(Debug)]
pub struct CsvTable {
    header: Vec<String>,
    records: Vec<csv::StringRecord>,
}

/// Reads the header and the records of a CSV file (cells trimmed, every record as
/// wide as the header).
pub fn parse_csv(text: &str) -> Result<CsvTable, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(str::to_string)
        .collect();
    let records: Vec<csv::StringRecord> = reader
        .records()
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    Ok(CsvTable { header, records })
}

/// The tensors `signature`'s inputs take from `table`, as [`read_csv`] describes.
pub fn csv_batch(table: &CsvTable, signature: &Signature) -> Result<Batch, String> {
    let CsvTable { header, records } = table;
    let rows = records.len();

    let mut batch = Batch::new();
    for spec in &signature.inputs {
        // A CSV row is flat: it fills a row of fixed dimensions, or a row of one
        // dynamic dimension, but cannot say how to fold into several with one unknown.
        if spec.row_shape().len() > 1 && spec.row_shape().iter().any(|d| d.fixed().is_none()) {
            return Err(format!(
                "input `{}` has shape {}, whose rows have a dynamic dimension a flat CSV row cannot fill; give this input as JSON or .npy",
                spec.name,
                DimsDisplay(&spec.shape)
            ));
        }
        let row_len: Option<usize> = spec.row_shape().iter().map(|d| d.fixed()).product();
        let mut columns: Vec<(usize, usize)> = Vec::new(); // (element index, column)
        for (col, name) in header.iter().enumerate() {
            if name == &spec.name {
                columns.push((0, col));
            } else if let Some(i) = element_index(name, &spec.name) {
                columns.push((i, col));
            }
        }
        if columns.is_empty() && signature.inputs.len() == 1 && row_len == Some(header.len()) {
            columns = (0..header.len()).map(|c| (c, c)).collect();
        }
        if columns.is_empty() {
            return Err(format!(
                "no column for input `{}`: name columns `{0}` or `{0}[0]`, `{0}[1]`, ... (header: {})",
                spec.name,
                header.join(", ")
            ));
        }
        columns.sort();
        let width = columns.len();
        if let Some(n) = row_len
            && n != width
        {
            return Err(format!(
                "input `{}` needs {n} values per row, the header has {width} columns for it",
                spec.name
            ));
        }
        let mut data = TensorData::with_capacity(spec.dtype, rows * width);
        for (r, record) in records.iter().enumerate() {
            for &(_, col) in &columns {
                let cell = record.get(col).unwrap_or("");
                push_cell(&mut data, cell).map_err(|m| {
                    format!(
                        "row {}, column `{}`: {m}",
                        r + 2,
                        header.get(col).map(String::as_str).unwrap_or("?")
                    )
                })?;
            }
        }
        let mut shape = vec![rows];
        let row_shape: Vec<usize> = spec.row_shape().iter().filter_map(|d| d.fixed()).collect();
        if row_shape.len() == spec.row_shape().len() && row_shape.iter().product::<usize>() == width
        {
            shape.extend(row_shape);
        } else {
            shape.push(width);
        }
        let tensor = Tensor::new(shape, data).map_err(|e| e.to_string())?;
        batch
            .insert(spec.name.clone(), tensor)
            .map_err(|e| e.to_string())?;
    }
    Ok(batch)
}

/// `Some(i)` when `column` is `input[i]`, `input_i` or `input.i`.
fn element_index(column: &str, input: &str) -> Option<usize> {
    let rest = column.strip_prefix(input)?;
    let digits = rest
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .or_else(|| rest.strip_prefix('_'))
        .or_else(|| rest.strip_prefix('.'))?;
    digits.parse().ok()
}

fn push_cell(data: &mut TensorData, cell: &str) -> Result<(), String> {
    let bad = |what: &str| format!("{cell:?} is not a valid {what}");
    match data {
        TensorData::F32(v) => v.push(parse_float(cell).ok_or_else(|| bad("f32"))? as f32),
        TensorData::F64(v) => v.push(parse_float(cell).ok_or_else(|| bad("f64"))?),
        TensorData::I64(v) => v.push(cell.parse().map_err(|_| bad("i64"))?),
        TensorData::I32(v) => v.push(cell.parse().map_err(|_| bad("i32"))?),
        TensorData::I8(v) => v.push(cell.parse().map_err(|_| bad("i8"))?),
        TensorData::U8(v) => v.push(cell.parse().map_err(|_| bad("u8"))?),
        TensorData::Bool(v) => v.push(match cell.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(bad("bool")),
        }),
        TensorData::String(v) => v.push(cell.to_string()),
    }
    Ok(())
}

fn parse_float(cell: &str) -> Option<f64> {
    match cell.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "infinity" | "+inf" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => cell.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelport_core::{DType, Dim, TensorSpec};

    fn sig(inputs: Vec<TensorSpec>) -> Signature {
        Signature {
            inputs,
            outputs: vec![],
        }
    }

    #[test]
    fn csv_columns_map_to_inputs() {
        let iris = sig(vec![TensorSpec::new(
            "X",
            DType::F32,
            vec![Dim::Dynamic(None), Dim::Fixed(4)],
        )]);
        // Feature names: all columns belong to the only input, in order.
        let b = read_csv("a,b,c,d\n1,2,3,4\n5,6,7,8\n", &iris).unwrap();
        assert_eq!(b.get("X").unwrap().shape(), &[2, 4]);
        assert_eq!(
            b.get("X").unwrap().data(),
            &TensorData::F32(vec![1., 2., 3., 4., 5., 6., 7., 8.])
        );
        // Indexed names, in any column order.
        let b = read_csv("X[1],X[0],X[3],X[2]\n2,1,4,3\n", &iris).unwrap();
        assert_eq!(
            b.get("X").unwrap().data(),
            &TensorData::F32(vec![1., 2., 3., 4.])
        );
        // Too few columns.
        let err = read_csv("a,b\n1,2\n", &iris).unwrap_err();
        assert!(err.contains("input `X`"), "{err}");
        // A bad cell names its row and column.
        let err = read_csv("a,b,c,d\n1,2,x,4\n", &iris).unwrap_err();
        assert!(err.contains("row 2, column `c`"), "{err}");
    }

    /// Found by the `inputs_csv` fuzz target: a column for an input whose rows
    /// have several dimensions, one dynamic, was read as a `[rows, 1]` tensor the
    /// model then refused by rank; the CSV reader now says why it cannot read it.
    #[test]
    fn csv_refuses_rows_it_cannot_fold() {
        let s = sig(vec![TensorSpec::new(
            "pixels",
            DType::U8,
            vec![
                Dim::Dynamic(Some("N".into())),
                Dim::Dynamic(None),
                Dim::Fixed(3),
            ],
        )]);
        let err = read_csv("pixels\n7\n", &s).unwrap_err();
        assert_eq!(
            err,
            "input `pixels` has shape [N, ?, 3], whose rows have a dynamic dimension a flat CSV row cannot fill; give this input as JSON or .npy"
        );
        let err = read_csv("pixels[0],pixels[1],pixels[2]\n1,2,3\n", &s).unwrap_err();
        assert!(err.contains("give this input as JSON or .npy"), "{err}");
    }

    #[test]
    fn csv_with_several_named_inputs() {
        let s = sig(vec![
            TensorSpec::new("age", DType::I64, vec![Dim::Dynamic(None), Dim::Fixed(1)]),
            TensorSpec::new(
                "city",
                DType::String,
                vec![Dim::Dynamic(None), Dim::Fixed(1)],
            ),
        ]);
        let b = read_csv("city,age\n\"Paris, FR\",31\nOslo,40\n", &s).unwrap();
        assert_eq!(b.get("age").unwrap().data(), &TensorData::I64(vec![31, 40]));
        assert_eq!(
            b.get("city").unwrap().data(),
            &TensorData::String(vec!["Paris, FR".into(), "Oslo".into()])
        );
        assert_eq!(b.get("city").unwrap().shape(), &[2, 1]);
    }
}
