"""SageMaker over TLS, as in a deployment: rustls with aws-lc's crypto (C and
assembly, per architecture) does the handshake and checks the certificate.
The rest of the suite talks plain HTTP to the emulator, so without this test
the aarch64 build (scripts/check-arm64) would never run aws-lc's code. A
throwaway CA, made with the openssl command, signs a certificate for 127.0.0.1;
the function trusts it through SSL_CERT_FILE, as the benchmark does."""

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


def test_a_stop_over_tls_with_the_certificate_checked(tls_emulator, tls_files, start_function):
    url, state = tls_emulator
    trust = {"SSL_CERT_FILE": str(tls_files / "ca.pem"), "AWS_CA_BUNDLE": str(tls_files / "ca.pem")}
    fn = start_function(env=trust, sagemaker_url=url)
    inv = fn.invoke({"PipelineExecutionArn": A})
    assert inv.ok and inv.payload == {"PipelineExecutionArn": A, "Outcome": "StopRequested"}, inv.payload
    assert state.snapshot()["executions"][A]["status"] in ("Stopping", "Stopped")


def test_a_certificate_from_an_untrusted_ca_is_refused(tls_emulator, start_function):
    """The same server, its CA not trusted: no request gets through (so the
    stop above went through a checked handshake)."""
    url, state = tls_emulator
    fn = start_function(sagemaker_url=url)
    inv = fn.invoke({"PipelineExecutionArn": A})
    assert not inv.ok and inv.error_type == "UpstreamUnavailable", inv.payload
    assert state.snapshot()["calls"] == [], "a request got past the handshake"
    assert state.snapshot()["executions"][A]["status"] == "Executing"
