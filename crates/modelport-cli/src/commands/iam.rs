//! `modelport iam-policy`: the permissions a deployment needs, as JSON.

use modelport_core::spec::DeploymentSpec;
use modelport_core::state::Workspace;

use super::print_json;
use super::targets;
use crate::cli::IamPolicyArgs;
use crate::exit::Code;

pub fn run(args: IamPolicyArgs) -> anyhow::Result<Code> {
    let spec = DeploymentSpec::from_file(&args.file)?;
    // Printing a policy touches nothing: the workspace is never written.
    let provider = targets::provider(&args.provider, &Workspace::new(".modelport"))?;
    print_json(&provider.iam_policy(&spec)?)?;
    Ok(Code::Success)
}
