//! SageMaker pipeline and execution ARNs, and the scope (partition, region,
//! account) the function may act in.

use crate::error::StopError;

/// `PipelineExecutionArn`'s and `PipelineArn`'s maximum length in the current
/// SageMaker service model. (Older API reference pages say 256, but a pipeline
/// name alone may have 256 characters, so real execution ARNs exceed that.)
pub const MAX_ARN_LEN: usize = 2048;

/// A validated pipeline execution ARN, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionArn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub pipeline: &'a str,
    pub execution_id: &'a str,
}

/// Where the function runs: an execution elsewhere is refused before any call.
/// The partition and region are always known; the account is known from the
/// invoked function ARN (or, for the CLI, the caller's identity). Where it is
/// not, targets in any account of this partition and region pass this check,
/// and IAM remains the boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub partition: String,
    pub region: String,
    pub account: Option<String>,
}

impl Scope {
    /// The scope of a Lambda function, from its invoked ARN
    /// (`arn:aws:lambda:us-east-1:123456789012:function:name[:alias]`).
    pub fn from_function_arn(arn: &str) -> Option<Scope> {
        let mut parts = arn.splitn(7, ':');
        let (Some("arn"), Some(partition), Some("lambda"), Some(region), Some(account)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        if partition.is_empty() || region.is_empty() || !is_account_id(account) {
            return None;
        }
        Some(Scope {
            partition: partition.to_owned(),
            region: region.to_owned(),
            account: Some(account.to_owned()),
        })
    }

    /// The scope of a region (the configured `AWS_REGION`), with the account
    /// when it is known. `None` for a region name SageMaker's pattern refuses.
    pub fn for_region(region: &str, account: Option<&str>) -> Option<Scope> {
        // A region name: `us-east-1`, `cn-north-1`, `us-gov-west-1`.
        let b = region.as_bytes();
        let named = (4..=64).contains(&b.len())
            && is_region(region)
            && b[0].is_ascii_lowercase()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && region.contains('-');
        if !named {
            return None;
        }
        Some(Scope {
            partition: partition_of(region).to_owned(),
            region: region.to_owned(),
            account: account.filter(|a| is_account_id(a)).map(str::to_owned),
        })
    }

    /// `aws us-east-1 123456789012`, for logs and messages.
    pub fn describe(&self) -> String {
        match &self.account {
            Some(account) => format!("{} {} {account}", self.partition, self.region),
            None => format!("{} {} (any account)", self.partition, self.region),
        }
    }

    fn check(
        &self,
        what: &str,
        arn: &str,
        partition: &str,
        region: &str,
        account: &str,
    ) -> Result<(), StopError> {
        let other_account = self.account.as_deref().is_some_and(|own| own != account);
        if partition != self.partition || region != self.region || other_account {
            return Err(StopError::forbidden(format!(
                "{what} {} is not in this function's partition, region and account ({}); \
                 the function only stops executions where it runs",
                quote(arn),
                self.describe()
            )));
        }
        Ok(())
    }
}

/// The partition a region belongs to, by its documented prefixes.
pub fn partition_of(region: &str) -> &'static str {
    const PREFIXES: [(&str, &str); 7] = [
        ("cn-", "aws-cn"),
        ("us-gov-", "aws-us-gov"),
        ("us-isob-", "aws-iso-b"),
        ("us-isof-", "aws-iso-f"),
        ("us-iso-", "aws-iso"),
        ("eu-isoe-", "aws-iso-e"),
        ("eusc-", "aws-eusc"),
    ];
    PREFIXES
        .iter()
        .find(|(prefix, _)| region.starts_with(prefix))
        .map_or("aws", |(_, partition)| partition)
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `[a-z\-]*`, the tail of the partition after `aws`.
fn is_partition_suffix(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
}

/// `[a-z0-9\-]*`
fn is_region(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// SageMaker's `PipelineName` pattern: `^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}`.
pub fn is_pipeline_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 256
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// The `.` of the documented pattern is any character but a line terminator;
/// control characters are refused as well (no real ARN has one, and an ESC
/// sequence must not travel on into replies, logs and terminals).
fn is_line_free(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
}

/// An execution id: SageMaker's are 12 lower-case letters and digits. The
/// pattern's `.*` would allow anything; printable ASCII other than `/` is
/// what is accepted here, so no space, invisible or bidirectional character
/// can make one ARN look like another.
fn is_execution_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

/// Splits `arn:<partition>:sagemaker:<region>:<account>:<resource>` and checks
/// the prefix against the documented pattern.
fn split_sagemaker_arn(arn: &str) -> Option<(&str, &str, &str, &str)> {
    let rest = arn.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("sagemaker:")?;
    let (region, rest) = rest.split_once(':')?;
    let (account, resource) = rest.split_once(':')?;
    let ok = partition
        .strip_prefix("aws")
        .is_some_and(is_partition_suffix)
        && is_region(region)
        && is_account_id(account)
        && is_line_free(resource);
    ok.then_some((partition, region, account, resource))
}

/// Validates a pipeline execution ARN: the documented length and pattern
/// (`^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:pipeline\/.*\/execution\/.*$`),
/// and, beyond the pattern, that it names exactly one pipeline and one execution
/// (`pipeline/<name>/execution/<id>` with no further `/`), since the allow-list
/// is checked against that pipeline name.
pub fn parse_execution_arn(arn: &str) -> Result<ExecutionArn<'_>, StopError> {
    let invalid = |why: &str| {
        StopError::validation(format!(
            "{} is not a valid pipeline execution ARN: {why}",
            quote(arn)
        ))
    };
    if arn.chars().count() > MAX_ARN_LEN {
        return Err(invalid("longer than 2048 characters"));
    }
    let (partition, region, account, resource) = split_sagemaker_arn(arn).ok_or_else(|| {
        invalid(
            "expected arn:aws:sagemaker:<region>:<12-digit account>:pipeline/<name>/execution/<id>",
        )
    })?;
    let structure = resource
        .strip_prefix("pipeline/")
        .and_then(|r| r.split_once("/execution/"))
        .filter(|(p, e)| is_pipeline_name(p) && is_execution_id(e));
    let Some((pipeline, execution_id)) = structure else {
        return Err(invalid(
            "expected pipeline/<name>/execution/<id> after the account",
        ));
    };
    Ok(ExecutionArn {
        partition,
        region,
        account,
        pipeline,
        execution_id,
    })
}

/// Resolves what a request gives as `PipelineName`, a name or a pipeline ARN,
/// to the pipeline's name, refusing an ARN outside the scope.
pub fn parse_pipeline(name_or_arn: &str, scope: &Scope) -> Result<String, StopError> {
    if !name_or_arn.starts_with("arn:") {
        if is_pipeline_name(name_or_arn) {
            return Ok(name_or_arn.to_owned());
        }
        return Err(StopError::validation(format!(
            "{} is not a valid pipeline name: 1 to 256 letters, digits and hyphens, \
             starting and ending with a letter or digit",
            quote(name_or_arn)
        )));
    }
    let parsed = (name_or_arn.chars().count() <= MAX_ARN_LEN)
        .then(|| split_sagemaker_arn(name_or_arn))
        .flatten()
        .and_then(|(partition, region, account, resource)| {
            let name = resource.strip_prefix("pipeline/")?;
            is_pipeline_name(name).then_some((partition, region, account, name))
        });
    let Some((partition, region, account, name)) = parsed else {
        return Err(StopError::validation(format!(
            "{} is not a valid pipeline ARN: expected arn:aws:sagemaker:<region>:<account>:pipeline/<name>",
            quote(name_or_arn)
        )));
    };
    scope.check("pipeline", name_or_arn, partition, region, account)?;
    Ok(name.to_owned())
}

/// Validates an execution ARN and checks it is in scope; returns its pipeline.
pub fn check_execution_arn<'a>(arn: &'a str, scope: &Scope) -> Result<ExecutionArn<'a>, StopError> {
    let parsed = parse_execution_arn(arn)?;
    scope.check(
        "execution",
        arn,
        parsed.partition,
        parsed.region,
        parsed.account,
    )?;
    Ok(parsed)
}

/// Quotes user input for an error message, cut short so a 1 MB string does
/// not become a 1 MB log line.
pub fn quote(s: &str) -> String {
    const MAX: usize = crate::error::MAX_QUOTED_CHARS;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut:?}… ({} characters)", s.chars().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly-training/execution/a1b2c3d4e5f6";

    fn scope() -> Scope {
        Scope::from_function_arn("arn:aws:lambda:us-east-1:123456789012:function:stopper").unwrap()
    }

    #[test]
    fn accepts_a_real_execution_arn_and_splits_it() {
        let a = parse_execution_arn(GOOD).unwrap();
        assert_eq!(a.pipeline, "nightly-training");
        assert_eq!(a.execution_id, "a1b2c3d4e5f6");
        assert_eq!(
            (a.partition, a.region, a.account),
            ("aws", "us-east-1", "123456789012")
        );
        assert!(parse_execution_arn(
            "arn:aws-cn:sagemaker:cn-north-1:123456789012:pipeline/p/execution/x"
        )
        .is_ok());
    }

    #[test]
    fn rejects_what_the_documented_pattern_rejects() {
        for bad in [
            "",
            "arn:aws:sagemaker:us-east-1:12345678901:pipeline/p/execution/x",
            "arn:aws:sagemaker:US-EAST-1:123456789012:pipeline/p/execution/x",
            "arn:aws:s3:us-east-1:123456789012:pipeline/p/execution/x",
            "arn:azure:sagemaker:us-east-1:123456789012:pipeline/p/execution/x",
            "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p",
            "arn:aws:sagemaker:us-east-1:123456789012:training-job/p/execution/x",
            "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/x\n",
            "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/x\u{1b}]0;owned\u{7}",
            "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/x\u{9b}2J",
            "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/x\u{202e}y",
            "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/x\u{200b}",
            "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/x y",
            "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/x\u{a0}",
            " arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/x",
        ] {
            let err = parse_execution_arn(bad).unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::Validation, "{bad:?}");
        }
    }

    #[test]
    fn rejects_ambiguous_or_empty_parts_the_pattern_alone_would_let_through() {
        for bad in [
            "arn:aws:sagemaker:us-east-1:123456789012:pipeline//execution/x",
            "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/",
            "arn:aws:sagemaker:us-east-1:123456789012:pipeline/a/execution/b/execution/c",
            "arn:aws:sagemaker:us-east-1:123456789012:pipeline/allowed/../other/execution/x",
        ] {
            assert!(parse_execution_arn(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn enforces_the_2048_character_limit() {
        let prefix = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/";
        let at_limit = format!("{prefix}{}", "x".repeat(MAX_ARN_LEN - prefix.len()));
        assert!(parse_execution_arn(&at_limit).is_ok());
        let over = format!("{at_limit}x");
        assert!(parse_execution_arn(&over)
            .unwrap_err()
            .message
            .contains("2048"));
    }

    #[test]
    fn accepts_the_execution_arn_of_a_pipeline_with_a_256_character_name() {
        // A real pipeline's name may have 256 characters; its executions'
        // ARNs then have about 330, and a sweep by name stops them.
        let name = format!("a{}", "-b".repeat(127))
            .chars()
            .take(255)
            .collect::<String>()
            + "z";
        assert_eq!(name.len(), 256);
        let arn = format!(
            "arn:aws:sagemaker:us-east-1:123456789012:pipeline/{name}/execution/k7xvw1b9q2hj"
        );
        assert!(arn.len() > 300);
        let parsed = check_execution_arn(&arn, &scope()).unwrap();
        assert_eq!(parsed.pipeline, name);
        let pipeline_arn = format!("arn:aws:sagemaker:us-east-1:123456789012:pipeline/{name}");
        assert_eq!(parse_pipeline(&pipeline_arn, &scope()).unwrap(), name);
    }

    #[test]
    fn the_configured_region_gives_a_scope_that_fails_closed() {
        let s = Scope::for_region("eu-west-1", None).unwrap();
        assert_eq!((s.partition.as_str(), s.account), ("aws", None));
        assert_eq!(
            Scope::for_region("cn-north-1", None).unwrap().partition,
            "aws-cn"
        );
        assert_eq!(
            Scope::for_region("us-gov-west-1", Some("123456789012"))
                .unwrap()
                .partition,
            "aws-us-gov"
        );
        for bad in [
            "",
            "-",
            "us-east-1 ",
            " us-east-1",
            "US-EAST-1",
            "useast1",
            "us-east-",
        ] {
            assert!(Scope::for_region(bad, None).is_none(), "{bad:?}");
        }
        let local = Scope::for_region("us-east-1", None).unwrap();
        // Without an account, other regions and partitions are still refused.
        for arn in [
            GOOD.replace("us-east-1", "eu-west-1"),
            GOOD.replace("arn:aws:", "arn:aws-cn:"),
        ] {
            assert_eq!(
                check_execution_arn(&arn, &local).unwrap_err().kind,
                crate::ErrorKind::Forbidden,
                "{arn}"
            );
        }
        assert!(check_execution_arn(&GOOD.replace("123456789012", "999999999999"), &local).is_ok());
        let with_account = Scope::for_region("us-east-1", Some("123456789012")).unwrap();
        assert!(
            check_execution_arn(&GOOD.replace("123456789012", "999999999999"), &with_account)
                .is_err()
        );
    }

    #[test]
    fn scope_comes_from_the_function_arn_and_refuses_other_accounts_and_regions() {
        assert_eq!(scope().region, "us-east-1");
        assert!(
            Scope::from_function_arn("arn:aws:lambda:us-east-1:123456789012:function:f:live")
                .is_some()
        );
        assert!(Scope::from_function_arn("").is_none());
        assert!(check_execution_arn(GOOD, &scope()).is_ok());
        let other_account = GOOD.replace("123456789012", "210987654321");
        let other_region = GOOD.replace("us-east-1", "eu-west-1");
        for arn in [other_account, other_region] {
            assert_eq!(
                check_execution_arn(&arn, &scope()).unwrap_err().kind,
                crate::ErrorKind::Forbidden
            );
        }
    }

    /// Each part of a function ARN is checked on its own: one bad part is
    /// enough to give no scope (the function then refuses to start).
    #[test]
    fn a_function_arn_with_any_bad_part_gives_no_scope() {
        for (arn, expected) in [
            (
                "arn:aws:lambda:us-east-1:123456789012:function:f",
                Some(("aws", "us-east-1")),
            ),
            (
                "arn:aws-cn:lambda:cn-north-1:123456789012:function:f",
                Some(("aws-cn", "cn-north-1")),
            ),
            ("arn::lambda:us-east-1:123456789012:function:f", None),
            ("arn:aws:lambda::123456789012:function:f", None),
            ("arn:aws:lambda:us-east-1:12345678901:function:f", None),
            ("arn:aws:lambda:us-east-1:12345678901x:function:f", None),
            ("arn:aws:s3:us-east-1:123456789012:function:f", None),
            ("arn:aws:lambda:us-east-1", None),
        ] {
            let scope = Scope::from_function_arn(arn);
            assert_eq!(
                scope
                    .as_ref()
                    .map(|s| (s.partition.as_str(), s.region.as_str())),
                expected,
                "{arn}"
            );
            if let Some(scope) = scope {
                assert_eq!(scope.account.as_deref(), Some("123456789012"), "{arn}");
            }
        }
    }

    /// The partition is `aws` and a tail of lower-case letters and hyphens:
    /// anything else in its place is not a SageMaker ARN at all, wherever
    /// the function runs.
    #[test]
    fn the_partition_is_aws_and_letters_or_hyphens() {
        for partition in ["aws1", "awsX", "aws_cn", "aws cn", "aws.cn"] {
            let arn = GOOD.replacen("arn:aws:", &format!("arn:{partition}:"), 1);
            let err = parse_execution_arn(&arn).unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::Validation, "{arn}");
            let pipeline = format!("arn:{partition}:sagemaker:us-east-1:123456789012:pipeline/p");
            let odd = Scope {
                partition: partition.into(),
                ..scope()
            };
            assert_eq!(
                parse_pipeline(&pipeline, &odd).unwrap_err().kind,
                crate::ErrorKind::Validation,
                "{pipeline}"
            );
        }
        for partition in ["aws-cn", "aws-us-gov", "aws-iso-b"] {
            assert!(parse_execution_arn(&GOOD.replacen(
                "arn:aws:",
                &format!("arn:{partition}:"),
                1
            ))
            .is_ok());
        }
    }

    /// A refusal for scope says where the function runs, so the caller can
    /// tell a wrong region from a wrong account.
    #[test]
    fn an_out_of_scope_refusal_names_the_function_scope() {
        let other = GOOD.replace("us-east-1", "eu-west-1");
        let err = check_execution_arn(&other, &scope()).unwrap_err();
        assert!(
            err.message.contains("(aws us-east-1 123456789012)"),
            "{}",
            err.message
        );
        let any = Scope::for_region("us-east-1", None).unwrap();
        let err = check_execution_arn(&other, &any).unwrap_err();
        assert!(
            err.message.contains("(aws us-east-1 (any account))"),
            "{}",
            err.message
        );
    }

    #[test]
    fn pipeline_names_and_arns() {
        assert_eq!(
            parse_pipeline("nightly-training", &scope()).unwrap(),
            "nightly-training"
        );
        assert_eq!(
            parse_pipeline(
                "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly-training",
                &scope()
            )
            .unwrap(),
            "nightly-training"
        );
        assert!(parse_pipeline("-bad", &scope()).is_err());
        assert!(parse_pipeline("bad name", &scope()).is_err());
        assert!(parse_pipeline(&"a".repeat(257), &scope()).is_err());
        assert_eq!(
            parse_pipeline(
                "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/p",
                &scope()
            )
            .unwrap_err()
            .kind,
            crate::ErrorKind::Forbidden
        );
    }

    #[test]
    fn quote_cuts_long_input() {
        let q = quote(&"a".repeat(10_000));
        assert!(q.len() < 1100 && q.contains("10000 characters"));
    }
}
