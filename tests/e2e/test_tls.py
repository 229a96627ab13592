"""SageMaker over TLS, as in a deployment: rustls with aws-lc's crypto (C and
assembly, per architecture) does the handshake and checks the certificate.
The rest of the suite talks plain HTTP to the emulator, so without this test
the aarch64 build (scripts/check-release) would never run aws-lc's code. A
throwaway CA, made with the openssl command, signs a certificate for 127.0.0.1.
The function trusts it the two ways an operator can (src/trust.rs): added to
the system store with AWS_CA_BUNDLE (what the benchmark does), or as the
system store named by SSL_CERT_FILE."""

import os
import subprocess

import pytest

import sagemaker_emulator
from conftest import A, standard_seed


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
            "-subj", "/CN=sagemaker-pipeline-stopper test CA",
            "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")
    openssl("req", *ec, "-keyout", "key.pem", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "server.ext").write_text("basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
                                  "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-sha256", "-extfile", "server.ext", "-out", "cert.pem")
    return d


@pytest.fixture
def tls_emulator(tls_files):
    server, url = sagemaker_emulator.serve(stop_settle_seconds=0.2, tls_cert=str(tls_files / "cert.pem"),
                                           tls_key=str(tls_files / "key.pem"))
    state = server.RequestHandlerClass.state
    state.seed(standard_seed())
    yield url, state
    server.shutdown()


@pytest.mark.parametrize("trust", ["AWS_CA_BUNDLE", "SSL_CERT_FILE"])
def test_a_stop_over_tls_with_the_certificate_checked(tls_emulator, tls_files, start_function, trust):
    url, state = tls_emulator
    fn = start_function(env={trust: str(tls_files / "ca.pem")}, sagemaker_url=url)
    inv = fn.invoke({"PipelineExecutionArn": A})
    assert inv.ok and inv.payload == {"PipelineExecutionArn": A, "Outcome": "StopRequested"}, inv.payload
    assert state.snapshot()["executions"][A]["status"] in ("Stopping", "Stopped")


SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@pytest.mark.parametrize("trust", [
    {},  # the system store, found where the platform keeps it
    pytest.param({"SSL_CERT_FILE": SYSTEM_BUNDLE}, marks=pytest.mark.skipif(
        not os.path.exists(SYSTEM_BUNDLE), reason="no Debian system bundle here")),
], ids=["system-store", "ssl-cert-file"])
def test_a_certificate_from_an_untrusted_ca_is_refused(tls_emulator, start_function, trust):
    """The same server, its CA not trusted: no request gets through (so the
    stops above went through a checked handshake), and the error says how to
    trust a CA."""
    url, state = tls_emulator
    fn = start_function(env=trust, sagemaker_url=url)
    inv = fn.invoke({"PipelineExecutionArn": A})
    assert not inv.ok and inv.error_type == "UpstreamUnavailable", inv.payload
    assert "AWS_CA_BUNDLE" in inv.payload.get("errorMessage", ""), inv.payload
    assert state.snapshot()["calls"] == [], "a request got past the handshake"
    assert state.snapshot()["executions"][A]["status"] == "Executing"


def test_an_unusable_aws_ca_bundle_fails_the_init_naming_it(tls_emulator, tls_files, tmp_path):
    import lambda_runtime
    from conftest import binary
    url, _ = tls_emulator
    (tmp_path / "empty.pem").write_text("")
    (tmp_path / "key.pem").write_bytes((tls_files / "key.pem").read_bytes())
    # A FIFO (opening it would wait for a writer forever) and an endless device.
    os.mkfifo(tmp_path / "fifo.pem")
    api = lambda_runtime.RuntimeApi()
    try:
        for path in (tmp_path / "empty.pem", tmp_path / "key.pem", tmp_path / "missing.pem", tmp_path,
                     tmp_path / "fifo.pem", "/dev/zero"):
            run = subprocess.run([binary()], env=lambda_runtime.function_env(api, url, {"AWS_CA_BUNDLE": str(path)}),
                                 capture_output=True, text=True, timeout=20)
            assert run.returncode != 0 and f'AWS_CA_BUNDLE "{path}" cannot be used' in run.stderr, (path, run.stderr)
            assert "BEGIN" not in run.stderr, "the file's contents must not be echoed"
    finally:
        api.close()


def test_the_cli_adds_aws_ca_bundle_to_the_system_store(tls_emulator, tls_files):
    """The CLI trusts the system store (a laptop's corporate CA is there) and,
    like the AWS CLI, the CA bundle AWS_CA_BUNDLE names; without it, the same
    server is refused with the hint."""
    import types
    from test_cli import cli
    url, state = tls_emulator
    emulator = types.SimpleNamespace(url=url)
    refused = cli(emulator, "--pipeline-execution-arn", A, "--no-progress")
    assert refused.returncode != 0 and "AWS_CA_BUNDLE" in refused.stderr, refused.stderr
    assert state.snapshot()["calls"] == []
    run = cli(emulator, "--pipeline-execution-arn", A, env={"AWS_CA_BUNDLE": str(tls_files / "ca.pem")})
    assert run.returncode == 0, run.stderr
    assert state.snapshot()["executions"][A]["status"] in ("Stopping", "Stopped")
    bad = cli(emulator, "--pipeline-execution-arn", A, env={"AWS_CA_BUNDLE": str(tls_files / "key.pem")})
    assert bad.returncode != 0 and "AWS_CA_BUNDLE" in bad.stderr and "BEGIN" not in bad.stderr, bad.stderr
