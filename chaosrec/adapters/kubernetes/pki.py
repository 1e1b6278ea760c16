"""The local control plane's certificates, made with the ``openssl`` command line.

One self-signed CA signs everything: the API server's serving certificate (for
127.0.0.1 and ``localhost`` only), a client certificate per component and user (the
subject's CN is the Kubernetes user name, each O a group: ``system:masters`` is
cluster-admin, and is given only to the admin and to kwok, which plays every kubelet),
and the front proxy's client certificate for the ``--requestheader-*`` flags (without
them the controllers log missing CA bundles forever). The service-account token
signing key is a separate key pair.

Keys are ECDSA P-256: making the whole set takes ~0.1 s, where RSA 2048 took seconds on
busy cores. Nothing here is meant to protect anything but a throwaway cluster on
loopback; the CA key is kept so a test can issue more users (:meth:`Pki.client`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from chaosrec.errors import SetupError, ToolNotFoundError

__all__ = ["CertPair", "Pki"]

_DAYS = "30"


@dataclass(frozen=True)
class CertPair:
    """A certificate and its private key (PEM files)."""

    cert: Path
    key: Path


def _openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        raise ToolNotFoundError(
            "no openssl on PATH, needed to make the local cluster's certificates; "
            "install it (Debian: apt-get install -y openssl)"
        )
    return found


# Our own minimal configuration: the system's openssl.cnf is not needed (and may be
# missing: it lives in /etc), and nothing from it leaks into these certificates.
_CONFIG = "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n"


def _run(*args: str | Path, cwd: Path) -> None:
    config = cwd / "openssl.cnf"
    if not config.exists():
        config.write_text(_CONFIG, encoding="utf-8")
    command = [_openssl(), *(str(a) for a in args)]
    env = {**os.environ, "OPENSSL_CONF": str(config)}
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, errors="replace", check=False
    )
    if result.returncode != 0:
        error = SetupError(f"`openssl {args[0]}` failed with exit code {result.returncode}")
        error.add_note((result.stderr or result.stdout).strip()[-2000:])
        raise error


class Pki:
    """Certificates for one local cluster, in ``folder`` (created).

    Example::

        pki = Pki.create(run_dir / "pki")
        pki.ca, pki.apiserver, pki.admin             # CertPairs
        pki.client("alice", groups=("dev",))         # another user, signed by the CA
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca = CertPair(folder / "ca.crt", folder / "ca.key")
        self.front_proxy_ca = CertPair(folder / "front-proxy-ca.crt", folder / "front-proxy-ca.key")
        self.apiserver = CertPair(folder / "apiserver.crt", folder / "apiserver.key")
        self.front_proxy_client = CertPair(
            folder / "front-proxy-client.crt", folder / "front-proxy-client.key"
        )
        self.service_account_key = folder / "sa.key"
        self.service_account_pub = folder / "sa.pub"
        self.admin = CertPair(folder / "admin.crt", folder / "admin.key")
        self.controller_manager = CertPair(
            folder / "kube-controller-manager.crt", folder / "kube-controller-manager.key"
        )
        self.scheduler = CertPair(folder / "kube-scheduler.crt", folder / "kube-scheduler.key")
        self.kwok = CertPair(folder / "kwok.crt", folder / "kwok.key")

    @classmethod
    def create(cls, folder: Path) -> Pki:
        """Make every certificate and key of a new cluster.

        Raises:
            ToolNotFoundError: there is no ``openssl``.
            SetupError: openssl failed (its message is noted).
        """
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        pki = cls(folder)
        pki._self_signed(pki.ca, "chaosrec-local-ca")
        pki._self_signed(pki.front_proxy_ca, "chaosrec-front-proxy-ca")
        pki._signed(
            pki.apiserver,
            "kube-apiserver",
            (),
            server_names=(
                "IP:127.0.0.1",
                "DNS:localhost",
                "DNS:kubernetes",
                "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc",
            ),
        )
        pki._signed(pki.front_proxy_client, "front-proxy-client", (), ca=pki.front_proxy_ca)
        pki._signed(pki.admin, "chaosrec-admin", ("system:masters",))
        pki._signed(pki.controller_manager, "system:kube-controller-manager", ())
        pki._signed(pki.scheduler, "system:kube-scheduler", ())
        # kwok plays every kubelet and updates any node's and pod's status; the Node
        # authorizer would need one identity per node, so it gets cluster-admin
        pki._signed(pki.kwok, "kwok-controller", ("system:masters",))
        _run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out",
             pki.service_account_key, cwd=folder)  # fmt: skip
        _run("ec", "-in", pki.service_account_key, "-pubout", "-out", pki.service_account_pub,
             cwd=folder)  # fmt: skip
        return pki

    def client(self, user: str, groups: tuple[str, ...] = ()) -> CertPair:
        """A client certificate for Kubernetes user ``user`` in ``groups``, signed by the
        cluster's CA (files ``user-<user>.crt/.key``)."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in user)
        pair = CertPair(self.folder / f"user-{safe}.crt", self.folder / f"user-{safe}.key")
        self._signed(pair, user, groups)
        return pair

    # -- openssl ----------------------------------------------------------------------

    def _key(self, path: Path) -> None:
        _run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path, cwd=self.folder)
        path.chmod(0o600)

    def _self_signed(self, pair: CertPair, cn: str) -> None:
        self._key(pair.key)
        _run(
            "req", "-x509", "-new", "-config", self.folder / "openssl.cnf", "-key", pair.key,
            "-subj", f"/CN={cn}", "-days", _DAYS,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            "-out", pair.cert, cwd=self.folder,
        )  # fmt: skip

    def _signed(
        self,
        pair: CertPair,
        cn: str,
        groups: tuple[str, ...],
        *,
        server_names: tuple[str, ...] = (),
        ca: CertPair | None = None,
    ) -> None:
        ca = ca or self.ca
        self._key(pair.key)
        subject = "".join(f"/O={g}" for g in groups) + f"/CN={cn}"
        csr = pair.cert.with_suffix(".csr")
        ext = pair.cert.with_suffix(".ext")
        usage = "serverAuth" if server_names else "clientAuth"
        lines = [
            "basicConstraints=critical,CA:FALSE",
            "keyUsage=critical,digitalSignature,keyEncipherment",
            f"extendedKeyUsage={usage}",
        ]
        if server_names:
            lines.append("subjectAltName=" + ",".join(server_names))
        ext.write_text("\n".join(lines) + "\n", encoding="utf-8")
        _run("req", "-new", "-config", self.folder / "openssl.cnf", "-key", pair.key,
             "-subj", subject, "-out", csr, cwd=self.folder)  # fmt: skip
        _run(
            "x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial",
            "-days", _DAYS, "-extfile", ext, "-out", pair.cert, cwd=self.folder,
        )  # fmt: skip
        csr.unlink(missing_ok=True)
        ext.unlink(missing_ok=True)
