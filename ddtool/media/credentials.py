"""Content credentials (C2PA): is a signed manifest embedded in the file, is it valid, who signed it, what it claims.

Read offline with c2pa-python (`c2pa.Reader`): remote manifests, OCSP and
every other network fetch are switched off, and no trust list is loaded, so
"valid" means the signature and the file's hashes check out, not that the
signer is someone you trust. An absent manifest proves nothing: most cameras,
phones and editors write none, and re-encoding or uploading strips it.
Without c2pa-python installed the scan still runs and says it did not check.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ABSENT_PROVES_NOTHING = (
    "An absent manifest proves nothing: most cameras, phones and editors write none, "
    "and re-encoding, screenshots or uploads strip it."
)
VALID_MEANS = (
    "the manifest's signature and the file's hashes check out; the signer's certificate was not checked against "
    "any trust list (ddtool reads offline and loads none), so the signer is only who the certificate says"
)
# Never touch the network: no remote manifests, no OCSP, no host allowed.
OFFLINE_SETTINGS = {
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
    "core": {"allowed_network_hosts": []},
}
# IPTC digital source types a C2PA action may name, in plain words (the ones that matter to a deepfake question).
SOURCE_TYPES = {
    "digitalCapture": "captured by a camera or recorder",
    "trainedAlgorithmicMedia": "made by generative AI",
    "compositeWithTrainedAlgorithmicMedia": "edited with generative AI",
    "algorithmicMedia": "made by an algorithm (not trained on data)",
    "compositeSynthetic": "composite including synthetic elements",
    "composite": "composite of several sources",
    "minorHumanEdits": "captured, with minor human edits",
    "humanEdits": "edited by a person",
    "digitalCreation": "created digitally by a person",
    "screenCapture": "a screen capture",
    "virtualRecording": "recorded from a virtual scene",
    "negativeFilm": "scanned from negative film",
    "positiveFilm": "scanned from positive film",
    "print": "scanned from a print",
}

_context = None


def _reader_context(c2pa):
    global _context
    if _context is None:
        _context = c2pa.Context.from_dict(OFFLINE_SETTINGS)
    return _context


def not_checked(reason: str) -> dict[str, Any]:
    return {"status": "not_checked", "summary": f"content credentials: not checked ({reason})", "note": ABSENT_PROVES_NOTHING}


def content_credentials(path: str | Path) -> dict[str, Any]:
    """The file's C2PA facts: `status` (absent, valid, trusted, invalid, remote, not_checked, error), a one-line
    `summary`, `note` (what absence means), and for a manifest its signer, claim generator and claims."""
    try:
        import c2pa
    except ImportError:
        return not_checked("c2pa-python not installed")
    except OSError as exc:  # the native library failed to load
        return not_checked(f"c2pa-python cannot load its library: {exc}")
    facts: dict[str, Any] = {"reader": f"c2pa-python {getattr(c2pa, '__version__', '?')} (c2pa-rs {c2pa.sdk_version()}), offline"}
    try:
        reader = c2pa.Reader(str(path), context=_reader_context(c2pa))
    except c2pa.C2paError.ManifestNotFound:
        return {**facts, "status": "absent", "summary": "content credentials: none in the file", "note": ABSENT_PROVES_NOTHING}
    except c2pa.C2paError.RemoteManifest as exc:
        return {**facts, "status": "remote", "summary": f"content credentials: the file points to a manifest stored elsewhere; not fetched (ddtool reads offline): {exc}",
                "note": ABSENT_PROVES_NOTHING}
    except (c2pa.C2paError.NotSupported, c2pa.C2paError.Io, c2pa.C2paError.FileNotFound) as exc:
        return {**facts, **not_checked(f"c2pa cannot read this file: {exc}")}
    except c2pa.C2paError as exc:
        return {**facts, "status": "error", "summary": f"content credentials: present but unreadable ({exc}); treat as invalid",
                "note": ABSENT_PROVES_NOTHING}
    with reader:
        store = json.loads(reader.json())
        state = str(reader.get_validation_state() or "").lower()
        remote = reader.get_remote_url()
    return {**facts, **_manifest_facts(store, state, remote)}


def _manifest_facts(store: dict[str, Any], state: str, remote: str | None) -> dict[str, Any]:
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest")) or {}
    failures = [
        {"code": s.get("code"), "explanation": s.get("explanation")}
        for s in store.get("validation_status") or []
        if s.get("code") != "signingCredential.untrusted"  # no trust list is loaded offline: always "untrusted"
    ]
    status = {"trusted": "trusted", "valid": "valid"}.get(state, "invalid") if not failures or state == "trusted" else "invalid"
    signature = active.get("signature_info") or {}
    signer = {k: signature.get(k) for k in ("common_name", "issuer", "alg", "cert_serial_number", "time") if signature.get(k)}
    generator = ", ".join(
        " ".join(str(v) for v in (g.get("name"), g.get("version")) if v) for g in active.get("claim_generator_info") or [] if isinstance(g, dict)
    ) or active.get("claim_generator")
    claims = _claims(active)
    who = signer.get("common_name") or signer.get("issuer") or "an unnamed signer"
    if status == "invalid":
        summary = f"content credentials: INVALID manifest signed by {who}: " + "; ".join(
            f"{f['code']}" for f in failures[:3]) + " (the file was changed after signing, or the manifest is damaged)"
    else:
        summary = f"content credentials: {status} manifest signed by {who}" + (f" ({signer['issuer']})" if signer.get("issuer") and signer.get("common_name") else "")
    return {
        "status": status,
        "summary": summary,
        "meaning": VALID_MEANS if status == "valid" else None,
        "signer": signer,
        "claim_generator": generator,
        "title": active.get("title"),
        "claims": claims,
        "manifests": len(manifests),
        "ingredients": len(active.get("ingredients") or []),
        "failures": failures,
        "remote_url": remote,
        "note": ABSENT_PROVES_NOTHING,
    }


def _claims(manifest: dict[str, Any]) -> list[str]:
    """Each assertion as one plain line: actions with their tool and digital source type, other assertions by label."""
    lines = []
    for assertion in manifest.get("assertions") or []:
        label = str(assertion.get("label", ""))
        data = assertion.get("data") if isinstance(assertion.get("data"), dict) else {}
        if label.startswith("c2pa.actions"):
            for action in data.get("actions") or []:
                words = [str(action.get("action", "?"))]
                agent = action.get("softwareAgent")
                if isinstance(agent, dict):
                    agent = " ".join(str(v) for v in (agent.get("name"), agent.get("version")) if v)
                if agent:
                    words.append(f"by {agent}")
                source = str(action.get("digitalSourceType") or "").rsplit("/", 1)[-1]
                if source:
                    words.append(f"(source: {SOURCE_TYPES.get(source, source)})")
                lines.append(" ".join(words))
        else:
            lines.append(label)
    return lines
