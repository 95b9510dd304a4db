//! Everything the CLI prints that is not a command's data: logs and errors.
//!
//! Data goes to stdout; logs and errors go to stderr. An error prints its whole
//! chain, then a `hint:` line when a likely fix is known.

use modelport_core::env::MODELPORT_LOG;
use tracing_subscriber::EnvFilter;

pub fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => {
            "modelport=info,modelport_runtime=info,modelport_package=info,modelport_serve=info,modelport_local=info,modelport_verify=info"
        }
        (false, 2) => {
            "modelport=debug,modelport_runtime=debug,modelport_package=debug,modelport_serve=debug,modelport_local=debug,modelport_verify=debug"
        }
        _ => "trace",
    };
    let filter = match std::env::var(MODELPORT_LOG) {
        Ok(f) if verbose == 0 => EnvFilter::new(f),
        _ => EnvFilter::new(default),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_on_stderr())
        .with_target(false)
        .without_time()
        .init();
}

/// The first hint any error in the chain offers.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(|e| {
        if let Some(e) = e.downcast_ref::<modelport_runtime::RuntimeError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<modelport_core::Error>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<modelport_package::PackageError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<modelport_serve::ServeError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<modelport_core::provider::ProviderError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<modelport_core::PredictError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<modelport_verify::CompareError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<modelport_catalog::CatalogError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<modelport_deploy::DeployError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<modelport_image::ImageError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<modelport_compress::CompressError>() {
            e.hint()
        } else {
            None
        }
    })
}

pub fn print_error(err: &anyhow::Error) {
    let mut text = format!("error: {err}");
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(&format!("\n  caused by: {cause}"));
        }
    }
    eprintln!("{text}");
    let log_tail = err.chain().find_map(|e| {
        if let Some(d) = e.downcast_ref::<modelport_deploy::DeployError>() {
            return d.log_tail().map(<[String]>::to_vec);
        }
        match e.downcast_ref() {
            Some(modelport_core::provider::ProviderError::StartupFailed { log_tail, .. }) => {
                Some(log_tail.clone())
            }
            _ => None,
        }
    });
    if let Some(lines) = log_tail.filter(|l| !l.is_empty()) {
        eprintln!("last lines of the server log:");
        for line in lines {
            eprintln!("  | {line}");
        }
    }
    if let Some(h) = hint(err) {
        eprintln!("hint: {h}");
    }
}

/// Colour only on a terminal, and never with `NO_COLOR` set.
pub fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::env::var_os(modelport_core::env::NO_COLOR).is_none() && std::io::stderr().is_terminal()
}
