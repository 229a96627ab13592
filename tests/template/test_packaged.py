"""deploy/packaged.yaml, the template that deploys the release's zips with no
toolchain: generated from template.yaml by scripts/package-template, and
different from it only as that script documents. (cfn-lint, `sam validate
--lint` and checkov run on it as on template.yaml.)"""

import copy
import json
import re
import shutil
import subprocess
import sys
import tomllib

import pytest
import yaml

from test_organization import regional_prefix_limit
from test_template import ROOT, CfnLoader, Stack

GENERATOR = ROOT / "scripts/package-template"
PACKAGED = ROOT / "deploy/packaged.yaml"
CARGO = tomllib.loads((ROOT / "Cargo.toml").read_text())
VERSION = CARGO["package"]["version"]
NEW_PARAMETERS = ["CodeBucket", "CodeBucketRegional", "CodeKeyPrefix"]


def load(path):
    return yaml.load(path.read_text(), Loader=CfnLoader)


@pytest.fixture(scope="module")
def template():
    return load(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def packaged():
    return load(PACKAGED)


def generate(root, *args):
    return subprocess.run([sys.executable, root / "scripts/package-template", *args], capture_output=True, text=True)


def test_the_committed_file_is_what_the_generator_writes():
    run = generate(ROOT, "--check")
    assert run.returncode == 0, run.stderr


def test_check_fails_when_template_yaml_changes_and_out_writes_the_same_file(tmp_path):
    for path in ("scripts/package-template", "template.yaml", "Cargo.toml", "deploy/packaged.yaml"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)
    assert generate(tmp_path, "--check").returncode == 0
    # The release writes dist/packaged.yaml: one level down too, so the same bytes.
    assert generate(tmp_path, "--out", tmp_path / "dist/packaged.yaml").returncode == 0
    assert (tmp_path / "dist/packaged.yaml").read_text() == PACKAGED.read_text()

    source = tmp_path / "template.yaml"
    source.write_text(source.read_text().replace("Default: rate(5 minutes)", "Default: rate(10 minutes)", 1))
    run = generate(tmp_path, "--check")
    assert run.returncode == 1 and "stale" in run.stderr
    assert generate(tmp_path).returncode == 0 and "rate(10 minutes)" in (tmp_path / "deploy/packaged.yaml").read_text()
    assert generate(tmp_path, "--check").returncode == 0


def test_it_is_template_yaml_apart_from_the_documented_differences(template, packaged):
    expected = copy.deepcopy(template)
    function = expected["Resources"]["StopperFunction"]
    del function["Metadata"]["BuildMethod"], function["Metadata"]["BuildProperties"]
    # CodeUri: test_the_code_is_the_release_zip_of_the_chosen_architecture.
    function["Properties"]["CodeUri"] = packaged["Resources"]["StopperFunction"]["Properties"]["CodeUri"]
    expected["Parameters"] = {**{p: packaged["Parameters"][p] for p in NEW_PARAMETERS}, **template["Parameters"]}
    expected["Conditions"]["CodeBucketIsRegional"] = {"Fn::Equals": [{"Ref": "CodeBucketRegional"}, "true"]}
    expected["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"].insert(
        0, {"Label": {"default": "Code (the release's S3 location)"}, "Parameters": NEW_PARAMETERS})
    # sam package resolves these from the template's own directory, deploy/.
    expected["Metadata"]["AWS::ServerlessRepo::Application"].update(LicenseUrl="../LICENSE", ReadmeUrl="../README.md")

    assert list(packaged) == list(expected)
    for section in expected:
        assert packaged[section] == expected[section], section
        if isinstance(expected[section], dict):
            assert list(packaged[section]) == list(expected[section]), section  # the same order, for reading


def test_the_code_is_the_release_zip_of_the_chosen_architecture(packaged):
    code_uri = packaged["Resources"]["StopperFunction"]["Properties"]["CodeUri"]
    assert code_uri == {
        "Bucket": {"Fn::If": ["CodeBucketIsRegional", {"Fn::Sub": "${CodeBucket}-${AWS::Region}"}, {"Ref": "CodeBucket"}]},
        "Key": {"Fn::Sub": "${CodeKeyPrefix}sagemaker-pipeline-stopper-${Architecture}.zip"},
    }
    params = packaged["Parameters"]
    assert "Default" not in params["CodeBucket"]  # required: no bucket is everyone's
    assert params["CodeBucketRegional"]["Default"] == "false" and params["CodeBucketRegional"]["AllowedValues"] == ["true", "false"]
    assert params["CodeKeyPrefix"]["Default"] == f"sagemaker-pipeline-stopper/{VERSION}/"


def test_it_fits_in_a_template_body():
    # CloudFormation takes at most 51,200 bytes inline (TemplateBody); more
    # needs the template in S3 (`aws cloudformation deploy --s3-bucket`, a
    # StackSet's TemplateURL). 41,493 at 0.1.0.
    assert len(PACKAGED.read_bytes()) <= 51_200


@pytest.mark.parametrize("name, value, ok", [
    ("CodeBucket", "my-releases", True),
    ("CodeBucket", "releases.example.com", True),
    ("CodeBucket", "My_Releases", False),
    ("CodeBucket", "ab", False),
    ("CodeBucket", "s3://my-releases", False),
    ("CodeKeyPrefix", "", True),
    ("CodeKeyPrefix", f"sagemaker-pipeline-stopper/{VERSION}/", True),
    ("CodeKeyPrefix", "releases/0.1.0", False),  # the key would be releases/0.1.0sagemaker-...zip
])
def test_the_code_location_parameters_refuse_what_cannot_be_a_bucket_or_prefix(packaged, name, value, ok):
    assert bool(re.fullmatch(packaged["Parameters"][name]["AllowedPattern"], value)) == ok


def test_the_code_bucket_parameter_says_how_long_a_regional_prefix_may_be(packaged):
    """A bucket alone may have S3's 63 characters; with CodeBucketRegional
    "true", -<region> follows, and a pattern cannot depend on another
    parameter: the description gives the limit."""
    param = packaged["Parameters"]["CodeBucket"]
    assert re.fullmatch(param["AllowedPattern"], "a" * 63) and not re.fullmatch(param["AllowedPattern"], "a" * 64)
    assert f'"-<region>", at most {regional_prefix_limit()} characters' in " ".join(param["Description"].split())


def transformed(packaged):
    """What `sam validate` and CloudFormation's transform run (aws-sam-translator,
    pinned in scripts/lib.sh)."""
    from boto3.session import Session
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    def managed_policies():
        raise AssertionError("the template names no managed policy, so nothing is looked up in IAM")

    # A region for the pseudo parameters, as `sam validate --region` gives; no call to AWS.
    translator = Translator(None, Parser(), boto_session=Session(region_name="us-east-1"))
    return translator.translate(copy.deepcopy(packaged), {}, get_managed_policy_map=managed_policies)


def test_the_sam_transform_makes_a_lambda_function_reading_the_zip(packaged):
    out = transformed(packaged)
    function = out["Resources"]["StopperFunction"]
    assert function["Type"] == "AWS::Lambda::Function"
    assert function["Properties"]["Code"] == {
        "S3Bucket": {"Fn::If": ["CodeBucketIsRegional", {"Fn::Sub": "${CodeBucket}-${AWS::Region}"}, {"Ref": "CodeBucket"}]},
        "S3Key": {"Fn::Sub": "${CodeKeyPrefix}sagemaker-pipeline-stopper-${Architecture}.zip"},
    }
    assert not [r for r in out["Resources"].values() if r["Type"].startswith("AWS::Serverless::")]


@pytest.mark.parametrize("name", ["template.yaml", "deploy/packaged.yaml"])
def test_the_serverless_repo_metadata_is_what_sam_publish_takes(name):
    path = ROOT / name
    app = load(path)["Metadata"]["AWS::ServerlessRepo::Application"]
    assert app["SemanticVersion"] == VERSION
    assert app["SpdxLicenseId"] == CARGO["workspace"]["package"]["license"]
    # The limits of SAR's CreateApplication (and no intrinsic function: SAR reads none).
    assert "Fn::" not in json.dumps(app) and "Ref" not in app
    assert re.fullmatch(r"[a-zA-Z0-9\-]{1,140}", app["Name"])
    assert re.fullmatch(r"[a-z0-9](([a-z0-9]|-(?!-))*[a-z0-9])?", app["Author"]) and len(app["Author"]) <= 127
    assert 1 <= len(app["Description"]) <= 256
    assert len(app["Labels"]) <= 10 and all(re.fullmatch(r"[a-zA-Z0-9+\-_:/@]{1,127}", label) for label in app["Labels"])
    # Local files until `sam package` uploads them: they must exist next to the template.
    for key in ("LicenseUrl", "ReadmeUrl"):
        assert (path.parent / app[key]).is_file(), (key, app[key])
    assert "Apache License" in (path.parent / app["LicenseUrl"]).read_text()[:200]


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1"])
def test_after_the_transform_each_region_names_the_central_bus_and_topic(packaged, region):
    """The Lambda function the transform makes keeps NOTIFY_EVENT_BUS's Fn::If:
    with NotificationAccountId, the same parameters give each region's stack
    its own region's bus and topic in that account."""
    stack = Stack(transformed(packaged), region=region, CodeBucket="releases", NotificationAccountId="210987654321",
                  NotificationEventBusName="stops", AlarmNotificationTopicArn="alarms")
    assert stack.template["Resources"]["StopperFunction"]["Type"] == "AWS::Lambda::Function"
    bus, put, alarms = stack.notifications()
    assert bus == f"arn:aws:events:{region}:210987654321:event-bus/stops" and put == [bus]
    assert alarms and all(actions == [f"arn:aws:sns:{region}:210987654321:alarms"] for actions in alarms.values())
