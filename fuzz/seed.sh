#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the published payloads in
# crates/graph-comms-testkit/fixtures (generated, not committed; see .gitignore).
#
#   notification_body   every fixture (notifications, requests, errors, the
#                       two published invalid bodies), byte for byte
#   jwt_header_claims   the published token claims, as claims (shape byte 1)
#                       and inside a Bearer token with an RS256 header (shape 0),
#                       at a few clocks (second byte)
#   transfer_machine,   no seeds: their input is an `arbitrary` byte stream,
#   call_machine        which libFuzzer explores from scratch
#
# Idempotent: files are named after their content.
set -euo pipefail
cd "$(dirname "$0")"
fixtures=../crates/graph-comms-testkit/fixtures

put() { # target, file with the seed's bytes
  local dir="corpus/$1" name
  mkdir -p "$dir"
  name="$(sha1sum "$2" | cut -c1-40)"
  cp "$2" "$dir/$name"
}

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

for target in notification_body jwt_header_claims transfer_machine call_machine; do
  mkdir -p "corpus/$target"
done

for fixture in "$fixtures"/*.json; do
  put notification_body "$fixture"
done

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
claims="$fixtures/teams-call-notifications.token-claims.json"
header='{"alg":"RS256","kid":"fuzz-key","typ":"JWT","x5t":"fuzz-key"}'
token="$(printf '%s' "$header" | b64url).$(b64url < "$claims").c2lnbmF0dXJl"
# Clocks: 2026-12-02, at exp + skew, at nbf - skew, near iat (see the target).
for clock in '\x00' '\x81' '\x82' '\x83'; do
  { printf '\x01'; printf "$clock"; cat "$claims"; } > "$tmp"
  put jwt_header_claims "$tmp"
  { printf '\x00'; printf "$clock"; printf 'Bearer %s' "$token"; } > "$tmp"
  put jwt_header_claims "$tmp"
done
# Two Authorization headers (shape 2), and the scheme in another case.
{ printf '\x02\x00'; printf 'Bearer %s\nBearer %s' "$token" "$token"; } > "$tmp"
put jwt_header_claims "$tmp"
{ printf '\x00\x00'; printf 'bEaReR %s' "$token"; } > "$tmp"
put jwt_header_claims "$tmp"

for target in notification_body jwt_header_claims; do
  echo "fuzz/seed.sh: corpus/$target: $(find "corpus/$target" -type f | wc -l) files"
done
