#!/usr/bin/env python3
"""An independent C1 reader, written from docs/c1-format.md alone (Python and its `cryptography`
package; no code shared with the TypeScript implementation), to check that the specification is
enough. Checks every vector of fixtures/c1-vectors: positive ones decrypt to their plaintext,
negative ones are refused. Exit status 0 when all agree.

    python3 packages/core/scripts/c1-reference-reader.py [fixtures/c1-vectors]
"""
import base64, json, os, struct, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, InvalidUnwrap


def read_c1(data, keys, uuid, content_type):
    if len(data) < 105 or data[:2] != b"C1":
        raise ValueError("not C1 or header truncated")
    header = data[:105]
    key_id, chunk, size = struct.unpack_from("<IIQ", header, 2)
    prefix, wrapped = header[18:25], header[25:65]
    ctype, = struct.unpack_from("<I", header, 65)
    huuid = header[69:105].decode("ascii")
    if not 1024 <= chunk <= 16777216:
        raise ValueError("chunk size")
    n = max(1, -(-size // chunk))
    if len(data) != 105 + size + 16 * n:
        raise ValueError("size mismatch")
    if key_id not in keys:
        raise ValueError("unknown key")
    try:
        dek = aes_key_unwrap(keys[key_id], wrapped)
    except InvalidUnwrap:
        raise ValueError("unwrap")
    gcm, out, at = AESGCM(dek), [], 105
    for i in range(n):
        plain_len = min(chunk, size - i * chunk)
        record = data[at:at + plain_len + 16]
        at += plain_len + 16
        nonce = prefix + struct.pack(">I", i) + (b"\x01" if i == n - 1 else b"\x00")
        out.append(gcm.decrypt(nonce, record, header))  # raises InvalidTag
        if i == 0 and (huuid != uuid or ctype != content_type):
            raise ValueError("other attachment")
    return b"".join(out)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../fixtures/c1-vectors")
    manifest = json.load(open(os.path.join(root, "manifest.json")))
    key = lambda path: base64.b64decode(open(os.path.join(root, path)).read())
    keys = {k["keyId"]: key(k["keyFile"]) for k in manifest["keys"] if "wrong" not in k["keyFile"]}
    failures = 0
    for v in manifest["vectors"]:
        data = open(os.path.join(root, v["objectFile"]), "rb").read()
        plain = open(os.path.join(root, v["plaintextFile"]), "rb").read()
        ok = read_c1(data, keys, v["uuid"], v["contentType"]) == plain
        failures += not ok
        print(("ok  " if ok else "BAD ") + v["name"])
    by_name = {v["name"]: v for v in manifest["vectors"]}
    for v in manifest["negative"]:
        of = by_name[v["of"]]
        ring = dict(keys)
        if "keyFile" in v:
            ring[1] = key(v["keyFile"])
        attachment = v.get("readAs", {"uuid": of["uuid"], "contentType": of["contentType"]})
        try:
            read_c1(open(os.path.join(root, v["file"]), "rb").read(), ring, attachment["uuid"], attachment["contentType"])
            failures += 1
            print("BAD negative " + v["name"] + " was accepted")
        except Exception as error:
            print("ok  negative %s refused (%s)" % (v["name"], type(error).__name__ + ": " + str(error)))
    return 1 if failures else 0


sys.exit(main())
