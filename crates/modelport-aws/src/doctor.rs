//! `modelport doctor --provider aws`: what a deploy would need, asked of the account
//! with read-only calls (GetCallerIdentity, GetBucketLocation, ListEndpoints,
//! GetAuthorizationToken). Nothing is created.

use modelport_core::provider::{Check, ProviderError};
use modelport_core::spec::DeploymentSpec;

use crate::builder::ClientSettings;
use crate::error::AwsFailure;
use crate::{AwsProvider, ecr, settings, upload};

pub async fn run(provider: &AwsProvider, spec: &DeploymentSpec) -> Vec<Check> {
    let aws = match settings(spec) {
        Ok(aws) => aws,
        Err(e) => return vec![Check::failed("provider.aws", &e)],
    };
    let client_settings = ClientSettings::from_spec(aws);
    let clients = match provider.clients(&client_settings).await {
        Ok(c) => c,
        // No region, or no credentials: every other check needs both.
        Err(e) => return vec![Check::failed("credentials", &e)],
    };
    let mut checks = Vec::new();
    let region_from = if aws.region.is_some() {
        "provider.aws.region"
    } else {
        "AWS_REGION or the profile"
    };
    let target = match &clients.endpoint_url {
        Some(url) => format!(" (calls go to {url})"),
        None => String::new(),
    };
    checks.push(Check::ok(
        "region",
        format!("{} from {region_from}{target}", clients.region),
    ));

    // Who the credentials are: the only call every identity may make.
    let account = match clients.sts.get_caller_identity().send().await {
        Ok(me) => {
            checks.push(Check::ok(
                "credentials",
                format!(
                    "{} in account {} (from {})",
                    me.arn().unwrap_or("an unnamed identity"),
                    me.account().unwrap_or("?"),
                    clients.credential_source
                ),
            ));
            me.account().map(String::from)
        }
        Err(e) => {
            let f = AwsFailure::from_sdk("GetCallerIdentity", &e);
            checks.push(Check::fail(
                "credentials",
                format!(
                    "credentials from {} were refused: {}: {}",
                    clients.credential_source, f.code, f.message
                ),
                Some(
                    "refresh them (`aws sso login`, or new access keys), or choose another profile with AWS_PROFILE or provider.aws.profile"
                        .into(),
                ),
            ));
            None
        }
    };

    checks.push(
        match upload::check_bucket_region(&clients.s3, &aws.bucket, &clients.region).await {
            Ok(()) => Check::ok(
                "bucket",
                format!("s3://{} is in {}", aws.bucket, clients.region),
            ),
            Err(e) => Check::failed("bucket", &e),
        },
    );

    // The execution role: its account should be the caller's (a role of another
    // account needs a trust policy that names SageMaker and this account).
    let role_account = aws.role_arn.split(':').nth(4).unwrap_or("");
    checks.push(match &account {
        Some(mine) if !role_account.is_empty() && role_account != mine => Check::warn(
            "execution role",
            format!(
                "{} belongs to account {role_account}, the credentials to {mine}",
                aws.role_arn
            ),
            "a role of another account works only when its trust policy lets SageMaker assume it and lets this account pass it; `modelport iam-policy` prints both",
        ),
        _ => Check::ok(
            "execution role",
            format!(
                "{} (SageMaker assumes it when CreateModel runs; `modelport iam-policy` prints what it needs)",
                aws.role_arn
            ),
        ),
    });

    checks.push(
        match clients
            .sagemaker
            .list_endpoints()
            .max_results(1)
            .send()
            .await
        {
            Ok(_) => Check::ok(
                "SageMaker",
                format!("ListEndpoints answers in {}", clients.region),
            ),
            Err(e) => {
                let err: ProviderError = AwsFailure::from_sdk("ListEndpoints", &e).into();
                Check::failed("SageMaker", &err)
            }
        },
    );

    checks.push(match spec.aws_image() {
        Some(image) => image_check(image, &clients.region, account.as_deref()),
        None => match ecr::login(&clients).await {
            Ok(login) => Check::ok(
                "image",
                format!(
                    "deploy builds modelport's serving image and pushes it to {}/{} (the registry accepts these credentials)",
                    login.registry,
                    ecr::REPOSITORY
                ),
            ),
            Err(e) => Check::failed("image", &e),
        },
    });
    checks
}

/// An explicit image: SageMaker pulls from ECR in the endpoint's own region, and
/// from another account only where that repository's policy allows it. (Whether
/// the tag exists is not asked: ECR's DescribeImages would, but the fakes'
/// registry cannot answer it yet.)
fn image_check(image: &str, region: &str, account: Option<&str>) -> Check {
    let host = image.split('/').next().unwrap_or_default();
    let ecr = host
        .strip_suffix(".amazonaws.com")
        .and_then(|h| h.split_once(".dkr.ecr."));
    match ecr {
        Some((_, r)) if r != region => Check::fail(
            "image",
            format!("{image} is in ECR in {r}, the endpoint in {region}"),
            Some(format!(
                "SageMaker pulls images from ECR in the endpoint's region: push it to {region} (`modelport image push`), or leave `provider.aws.image_uri` out and deploy pushes one"
            )),
        ),
        Some((owner, _)) if account.is_some_and(|a| a != owner) => Check::warn(
            "image",
            format!(
                "{image} belongs to account {owner}, the credentials to {}",
                account.unwrap_or_default()
            ),
            "SageMaker pulls an image of another account only when that repository's policy lets this account's execution role pull it",
        ),
        Some(_) => Check::ok(
            "image",
            format!("{image}, which SageMaker pulls from ECR when the endpoint starts"),
        ),
        None => Check::warn(
            "image",
            format!("{image} is not in Amazon ECR"),
            "SageMaker real-time endpoints pull from ECR (a private registry only through VpcConfig and RepositoryAccessMode: Vpc, which modelport does not set): push the image to ECR in the endpoint's region",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelport_core::provider::CheckLevel;

    #[test]
    fn an_image_is_checked_for_region_and_account() {
        let level = |image, account| image_check(image, "us-east-1", account).level;
        let here = "123456789012.dkr.ecr.us-east-1.amazonaws.com/modelport:0.1.0";
        assert_eq!(level(here, Some("123456789012")), CheckLevel::Ok);
        assert_eq!(level(here, None), CheckLevel::Ok);
        assert_eq!(level(here, Some("210987654321")), CheckLevel::Warn);
        let there = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelport:0.1.0";
        assert_eq!(level(there, Some("123456789012")), CheckLevel::Fail);
        assert_eq!(level("ghcr.io/me/modelport:0.1.0", None), CheckLevel::Warn);
    }
}
