//! The least-privilege IAM policies for one deployment: what the user running
//! modelport needs, and what the endpoint's execution role needs. Both are scoped
//! to this deployment's bucket prefix and resource names.

use modelport_core::spec::{AwsSettings, DeploymentSpec};
use serde_json::{Value, json};

/// The account id in an IAM role ARN (`arn:aws:iam::123456789012:role/x`).
fn account_of(role_arn: &str) -> &str {
    role_arn
        .split(':')
        .nth(4)
        .filter(|a| !a.is_empty())
        .unwrap_or("*")
}

/// `ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG` → the repository's ARN.
fn ecr_repository_arn(image: &str) -> Option<String> {
    let (host, rest) = image.split_once('/')?;
    let mut parts = host.split('.');
    let account = parts.next()?;
    if parts.next()? != "dkr" || parts.next()? != "ecr" {
        return None;
    }
    let region = parts.next()?;
    let repo = rest.split(['@', ':']).next()?;
    Some(format!("arn:aws:ecr:{region}:{account}:repository/{repo}"))
}

/// The `Resource` and `Condition` that grant use of the KMS key as S3 and SageMaker
/// accept it. A key id or key ARN is the key itself. An alias (`alias/models`, or an
/// alias ARN) is not: IAM matches cryptographic operations against the key's ARN, and
/// an alias in `Resource` only governs the alias resource (AWS KMS developer guide,
/// "Use aliases to control access to KMS keys"). So an alias grants the account's keys
/// that carry it, through the `kms:ResourceAliases` condition.
fn kms_key_scope(key: &str, region: &str, account: &str) -> (String, Option<Value>) {
    let (region, account, rest) = match key.strip_prefix("arn:") {
        // arn:PARTITION:kms:REGION:ACCOUNT:key/ID or …:alias/NAME
        Some(arn) => match arn.splitn(5, ':').collect::<Vec<_>>()[..] {
            [_, _, region, account, rest] => (region, account, rest),
            _ => return (key.to_string(), None),
        },
        None => (region, account, key),
    };
    if rest.starts_with("alias/") {
        let partition = key
            .strip_prefix("arn:")
            .and_then(|arn| arn.split(':').next())
            .unwrap_or("aws");
        (
            format!("arn:{partition}:kms:{region}:{account}:key/*"),
            Some(json!({"ForAnyValue:StringEquals": {"kms:ResourceAliases": rest}})),
        )
    } else if key.starts_with("arn:") {
        (key.to_string(), None)
    } else {
        (format!("arn:aws:kms:{region}:{account}:key/{key}"), None)
    }
}

/// The policies as one JSON document: `user_policy`, `execution_role_policy` and
/// `execution_role_trust_policy`, each a complete IAM policy document.
pub fn policies(spec: &DeploymentSpec, aws: &AwsSettings) -> Value {
    let name = spec.name.as_str();
    let account = account_of(&aws.role_arn);
    let region = aws.region.as_deref().unwrap_or("*");
    let prefix = aws.prefix.trim_matches('/');
    let objects = if prefix.is_empty() {
        format!("arn:aws:s3:::{}/{name}/*", aws.bucket)
    } else {
        format!("arn:aws:s3:::{}/{prefix}/{name}/*", aws.bucket)
    };
    let key_prefix = if prefix.is_empty() {
        format!("{name}/")
    } else {
        format!("{prefix}/{name}/")
    };
    let bucket = format!("arn:aws:s3:::{}", aws.bucket);
    let sm = |kind: &str, pattern: &str| {
        format!("arn:aws:sagemaker:{region}:{account}:{kind}/{pattern}")
    };
    let patterns = crate::names::resource_patterns(name);
    let each = |kind: &str, names: &[String]| names.iter().map(|p| sm(kind, p)).collect::<Vec<_>>();
    let deployment_resources = [
        each("model", &patterns.models),
        each("endpoint-config", &patterns.configs),
        each("endpoint", &patterns.endpoints),
    ]
    .concat();

    let mut user = vec![
        json!({
            "Sid": "ArtifactObjects",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            "Resource": objects,
        }),
        json!({
            "Sid": "ArtifactBucket",
            "Effect": "Allow",
            "Action": ["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
            "Resource": bucket,
        }),
        json!({
            "Sid": "ArtifactListing",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": bucket,
            "Condition": {"StringLike": {"s3:prefix": [format!("{key_prefix}*")]}},
        }),
        json!({
            "Sid": "DeploymentResources",
            "Effect": "Allow",
            "Action": [
                "sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:DeleteModel",
                "sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig", "sagemaker:DeleteEndpointConfig",
                "sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint", "sagemaker:DeleteEndpoint",
                "sagemaker:UpdateEndpointWeightsAndCapacities",
                "sagemaker:InvokeEndpoint", "sagemaker:AddTags", "sagemaker:ListTags",
            ],
            // Revisions, the endpoint, and the short-lived verification endpoints
            // (`NAME-verify-...`) that serverless revisions are compared on.
            "Resource": deployment_resources,
        }),
        json!({
            "Sid": "Discovery",
            "Effect": "Allow",
            "Action": ["sagemaker:ListEndpoints", "sagemaker:ListEndpointConfigs", "sagemaker:ListModels"],
            "Resource": "*",
        }),
        json!({
            "Sid": "PassExecutionRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": aws.role_arn,
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        }),
    ];
    let mut role = vec![
        json!({
            "Sid": "ReadModelArtifact",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": objects,
        }),
        json!({
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            // One log group per endpoint.
            "Resource": patterns.endpoints.iter()
                .map(|e| format!("arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{e}:*"))
                .collect::<Vec<_>>(),
        }),
        json!({
            "Sid": "Metrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "AWS/SageMaker"]}},
        }),
        json!({
            "Sid": "PullImageToken",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        }),
    ];
    let image = aws.image_uri.as_deref().or(spec.serving.image.as_deref());
    // Without an image, deploy builds one and pushes it to the account's
    // `modelport` repository, creating it (with tags) when missing.
    let own_repository = format!(
        "arn:aws:ecr:{region}:{account}:repository/{}",
        crate::ecr::REPOSITORY
    );
    if image.is_none() {
        user.push(json!({
            "Sid": "PushServingImageToken",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        }));
        user.push(json!({
            "Sid": "PushServingImage",
            "Effect": "Allow",
            "Action": [
                "ecr:DescribeRepositories", "ecr:CreateRepository", "ecr:TagResource",
                "ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
                "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage",
            ],
            "Resource": own_repository,
        }));
    }
    let repository = match image {
        Some(i) => ecr_repository_arn(i).unwrap_or_else(|| "*".into()),
        None => own_repository,
    };
    // What `modelport doctor` reads: the role (does it exist, whom does it trust)
    // and, for an explicit image, whether its tag is in the repository.
    let mut reads = vec![json!({
        "Sid": "DoctorReadsTheRole",
        "Effect": "Allow",
        "Action": "iam:GetRole",
        "Resource": aws.role_arn,
    })];
    if let Some(repo) = image.and_then(ecr_repository_arn) {
        reads.push(json!({
            "Sid": "DoctorReadsTheImage",
            "Effect": "Allow",
            "Action": "ecr:DescribeImages",
            "Resource": repo,
        }));
    }
    user.extend(reads);
    role.push(json!({
        "Sid": "PullImage",
        "Effect": "Allow",
        "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
        "Resource": repository,
    }));
    if let Some(key) = &aws.kms_key_id {
        let (key_arn, condition) = kms_key_scope(key, region, account);
        let with_condition = |mut statement: Value| {
            if let Some(c) = &condition {
                statement["Condition"] = c.clone();
            }
            statement
        };
        user.push(with_condition(json!({
            "Sid": "EncryptArtifactAndEndpoint",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant"],
            "Resource": key_arn,
        })));
        role.push(with_condition(json!({
            "Sid": "DecryptArtifact",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": key_arn,
        })));
    }
    if aws.vpc.is_some() {
        role.push(json!({
            "Sid": "VpcNetworking",
            "Effect": "Allow",
            "Action": [
                "ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission", "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs",
                "ec2:DescribeDhcpOptions", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
            ],
            "Resource": "*",
        }));
    }
    json!({
        "user_policy": {"Version": "2012-10-17", "Statement": user},
        "execution_role_policy": {"Version": "2012-10-17", "Statement": role},
        "execution_role_trust_policy": {
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_images_map_to_repository_arns() {
        assert_eq!(
            ecr_repository_arn("123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelport:0.1.0")
                .as_deref(),
            Some("arn:aws:ecr:eu-west-1:123456789012:repository/modelport")
        );
        assert_eq!(
            ecr_repository_arn("123.dkr.ecr.us-east-1.amazonaws.com/team/mp@sha256:ab").as_deref(),
            Some("arn:aws:ecr:us-east-1:123:repository/team/mp")
        );
        assert_eq!(ecr_repository_arn("docker.io/library/python:3"), None);
    }

    #[test]
    fn kms_aliases_are_granted_through_the_resource_aliases_condition() {
        let alias = kms_key_scope("alias/models", "eu-west-1", "123456789012");
        assert_eq!(alias.0, "arn:aws:kms:eu-west-1:123456789012:key/*");
        assert_eq!(
            alias.1,
            Some(json!({"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/models"}}))
        );
        let alias_arn = kms_key_scope("arn:aws-cn:kms:cn-north-1:42:alias/m", "eu-west-1", "9");
        assert_eq!(alias_arn.0, "arn:aws-cn:kms:cn-north-1:42:key/*");
        assert_eq!(
            alias_arn.1,
            Some(json!({"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/m"}}))
        );
        assert_eq!(
            kms_key_scope("1234abcd-12ab-34cd-56ef-1234567890ab", "eu-west-1", "123"),
            (
                "arn:aws:kms:eu-west-1:123:key/1234abcd-12ab-34cd-56ef-1234567890ab".into(),
                None
            )
        );
        let arn = "arn:aws:kms:us-east-1:123:key/abcd";
        assert_eq!(kms_key_scope(arn, "eu-west-1", "9"), (arn.into(), None));
    }
}
