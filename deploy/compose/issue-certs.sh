#!/bin/sh
# One-shot certificate job of deploy/compose.yaml: a private CA (kept in the `pki` volume only) and one
# key + certificate per party, each party's files copied into that party's own volume (mode 0600 keys,
# owned by the image's non-root user 10001). Re-running it keeps the existing CA and certificates.
set -eu
PKI=/var/lib/fedrisk/pki
if [ ! -f "$PKI/ca.pem" ]; then
  # no --hosts: every certificate carries its party id as DNS name, which is what peers pin to
  fedrisk certs --out "$PKI" --parties bank insurer arbiter --hosts localhost
fi
for party in bank insurer arbiter; do
  out="/out/$party"
  cp "$PKI/ca.pem" "$PKI/$party.pem" "$PKI/$party-key.pem" "$out/"
  chown -R 10001:10001 "$out"
  chmod 0700 "$out"
  chmod 0600 "$out/$party-key.pem"
done
echo "certificates ready for bank, insurer, arbiter"
