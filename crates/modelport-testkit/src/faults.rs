//! What the fakes' `POST /_fake/faults` accepts: one fault or a list, each in the
//! fake's own JSON form.

use serde::de::DeserializeOwned;

/// Parses `body` as one `S` or a list of them and converts each into a fault.
pub(crate) fn parse<S, F>(body: &[u8]) -> Result<Vec<F>, String>
where
    S: DeserializeOwned,
    F: TryFrom<S, Error = String>,
{
    serde_json::from_slice::<S>(body)
        .map(|s| vec![s])
        .or_else(|_| serde_json::from_slice::<Vec<S>>(body))
        .map_err(|e| format!("expected a fault or a list of faults: {e}"))?
        .into_iter()
        .map(F::try_from)
        .collect()
}
