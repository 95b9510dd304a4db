//! `modelport doctor --provider aws`: what a deploy would need, asked of the account
//! with read-only calls (GetCallerIdentity, GetBucketLocation, IAM GetRole,
//! ListEndpoints, ECR DescribeImages or GetAuthorizationToken). Nothing is created.

use modelport_core::provider::{Check, CheckLevel, ProviderError};
use modelport_core::spec::DeploymentSpec;

use aws_sdk_ecr::types::ImageIdentifier;

use crate::builder::{AwsClients, ClientSettings};
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

    checks.push(role_check(&clients, &aws.role_arn, account.as_deref()).await);

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
        Some(image) => match image_check(image, &clients.region, account.as_deref()) {
            // In ECR of this region: ask ECR whether the tag or digest is there.
            check if check.level == CheckLevel::Ok => image_exists(&clients, image).await,
            check => check,
        },
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
/// from another account only where that repository's policy allows it. Whether
/// the tag exists is [`image_exists`]'s question.
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

/// The execution role: it exists (IAM GetRole), is the ARN the spec names (a
/// wrong path is a role SageMaker cannot find), and its trust policy lets
/// SageMaker assume it. A role of another account cannot be read from here: its
/// trust policy must also let this account pass it.
async fn role_check(clients: &AwsClients, role_arn: &str, account: Option<&str>) -> Check {
    const WHAT: &str = "execution role";
    let role_account = role_arn.split(':').nth(4).unwrap_or("");
    if let Some(mine) = account
        && !role_account.is_empty()
        && role_account != mine
    {
        return Check::warn(
            WHAT,
            format!("{role_arn} belongs to account {role_account}, the credentials to {mine}"),
            "a role of another account works only when its trust policy lets SageMaker assume it and lets this account pass it; `modelport iam-policy` prints both",
        );
    }
    let name = role_arn.rsplit('/').next().unwrap_or(role_arn);
    let role = match clients.iam.get_role().role_name(name).send().await {
        Ok(out) => match out.role {
            Some(role) => role,
            None => return Check::warn(WHAT, "IAM GetRole answered without a role", ""),
        },
        Err(e) => {
            let f = AwsFailure::from_sdk("GetRole", &e);
            return match f.code.as_str() {
                "NoSuchEntity" => Check::fail(
                    WHAT,
                    format!(
                        "{role_arn} does not exist{}",
                        account
                            .map(|a| format!(" in account {a}"))
                            .unwrap_or_default()
                    ),
                    Some(format!(
                        "create the role `{name}` with the trust and permission policies `modelport iam-policy` prints, or set provider.aws.role_arn to an existing role"
                    )),
                ),
                "AccessDenied" | "AccessDeniedException" => Check::warn(
                    WHAT,
                    format!(
                        "{role_arn} cannot be read here (iam:GetRole refused: {})",
                        f.message
                    ),
                    "SageMaker checks the role when CreateModel runs; to let doctor check it first, allow iam:GetRole on it (`modelport iam-policy` includes it)",
                ),
                _ => Check::warn(
                    WHAT,
                    format!(
                        "{role_arn} was not checked: GetRole failed: {}: {}",
                        f.code, f.message
                    ),
                    "SageMaker checks the role when CreateModel runs",
                ),
            };
        }
    };
    if role.arn != role_arn {
        return Check::fail(
            WHAT,
            format!(
                "provider.aws.role_arn is {role_arn}, but the role named `{name}` is {}",
                role.arn
            ),
            Some(format!("set provider.aws.role_arn: {}", role.arn)),
        );
    }
    let trust = role.assume_role_policy_document.as_deref().unwrap_or("");
    if sagemaker_may_assume(trust) {
        Check::ok(
            WHAT,
            format!(
                "{role_arn} exists and trusts sagemaker.amazonaws.com (`modelport iam-policy` prints what it needs)"
            ),
        )
    } else {
        Check::fail(
            WHAT,
            format!(
                "{role_arn} exists, but its trust policy does not let sagemaker.amazonaws.com assume it"
            ),
            Some(format!(
                "CreateModel would fail with \"Could not assume role\": write execution_role_trust_policy from `modelport iam-policy --output json` to trust.json and run `aws iam update-assume-role-policy --role-name {name} --policy-document file://trust.json`"
            )),
        )
    }
}

/// Whether a trust policy (IAM returns it URL-encoded) has an `Allow` of
/// `sts:AssumeRole` for the service principal `sagemaker.amazonaws.com`.
fn sagemaker_may_assume(document: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(document).decode_utf8_lossy();
    let Ok(policy) = serde_json::from_str::<serde_json::Value>(&decoded) else {
        return false;
    };
    let one_or_many = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    let statements = match &policy["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        one @ serde_json::Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    };
    statements.iter().any(|st| {
        st["Effect"] == "Allow"
            && one_or_many(&st["Action"])
                .iter()
                .any(|a| matches!(a.as_str(), "sts:AssumeRole" | "sts:*" | "*"))
            && one_or_many(&st["Principal"]["Service"])
                .iter()
                .any(|s| s == "sagemaker.amazonaws.com")
    })
}

/// An image in ECR of the endpoint's region: ECR's DescribeImages says whether
/// the tag (or digest) SageMaker would pull is there.
async fn image_exists(clients: &AwsClients, image: &str) -> Check {
    const WHAT: &str = "image";
    let Some((host, path)) = image.split_once('/') else {
        return Check::ok(WHAT, image.to_string());
    };
    let account = host.split('.').next().unwrap_or_default();
    let (repository, id) = match path.split_once('@') {
        Some((repo, digest)) => (
            repo,
            ImageIdentifier::builder().image_digest(digest).build(),
        ),
        None => match path.rsplit_once(':') {
            Some((repo, tag)) => (repo, ImageIdentifier::builder().image_tag(tag).build()),
            None => (path, ImageIdentifier::builder().image_tag("latest").build()),
        },
    };
    let answer = clients
        .ecr
        .describe_images()
        .registry_id(account)
        .repository_name(repository)
        .image_ids(id)
        .send()
        .await;
    let push_hint = format!(
        "push it (`modelport image build`, then `modelport image push {image}`), or leave provider.aws.image_uri out and deploy builds and pushes one"
    );
    match answer {
        Ok(out) => match out.image_details().first() {
            Some(found) => Check::ok(
                WHAT,
                format!(
                    "{image} is in ECR ({}), SageMaker pulls it when the endpoint starts",
                    found.image_digest().unwrap_or("no digest given")
                ),
            ),
            None => Check::fail(WHAT, format!("{image} is not in ECR"), Some(push_hint)),
        },
        Err(e) => {
            let f = AwsFailure::from_sdk("DescribeImages", &e);
            match f.code.as_str() {
                "ImageNotFoundException" => Check::fail(
                    WHAT,
                    format!("{image}: the repository {repository} has no such image"),
                    Some(push_hint),
                ),
                "RepositoryNotFoundException" => Check::fail(
                    WHAT,
                    format!(
                        "{image}: the repository {repository} does not exist in account {account}'s registry"
                    ),
                    Some(push_hint),
                ),
                "AccessDeniedException" => Check::warn(
                    WHAT,
                    format!(
                        "{image} was not checked (ecr:DescribeImages refused: {})",
                        f.message
                    ),
                    "allow ecr:DescribeImages on the repository to let doctor check it (`modelport iam-policy` includes it)",
                ),
                _ => Check::warn(
                    WHAT,
                    format!(
                        "{image} was not checked: DescribeImages failed: {}: {}",
                        f.code, f.message
                    ),
                    "SageMaker pulls the image when the endpoint starts; a missing image fails the endpoint then",
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_policies_are_read_as_iam_returns_them() {
        let plain = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"sagemaker.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        assert!(sagemaker_may_assume(plain));
        let encoded: String =
            percent_encoding::utf8_percent_encode(plain, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        assert!(sagemaker_may_assume(&encoded));
        let many = r#"{"Statement":{"Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com","sagemaker.amazonaws.com"]},"Action":["sts:AssumeRole","sts:TagSession"]}}"#;
        assert!(sagemaker_may_assume(many));
        let ec2 = plain.replace("sagemaker", "ec2");
        assert!(!sagemaker_may_assume(&ec2));
        let denied = plain.replace("Allow", "Deny");
        assert!(!sagemaker_may_assume(&denied));
        assert!(!sagemaker_may_assume("not json"));
    }

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
