#!/usr/bin/env bash
# Starts SeaweedFS (installed by scripts/setup.sh) as a local S3-compatible object
# store on loopback, for trying and benchmarking a shared store:
#
#   source scripts/objectstore.sh [DATA_DIR]
#
# Sets the AWS_* variables docchat reads, starts `weed server -s3` in the
# background (data in DATA_DIR, a temporary folder by default), waits until it
# answers, makes the bucket `docchat`, and sets DOCCHAT_OBJECTSTORE_PID.
# `kill $DOCCHAT_OBJECTSTORE_PID` stops it.
here_os="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here_os/env.sh"
weed="$DOCCHAT_CACHE/venv/bin/weed"
[ -x "$weed" ] || { echo "objectstore: $weed is missing: run scripts/setup.sh" >&2; return 1 2>/dev/null || exit 1; }
os_dir="${1:-$(mktemp -d -t docchat-s3-XXXXXX)}"
mkdir -p "$os_dir"
# Eight ports from a base none of them is taken at.
os_base=""
for b in $(seq 40100 10 40900); do
  busy=0
  for k in 0 1 2 3 4 5 6 7; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$((b + k))") 2>/dev/null; then busy=1; break; fi
  done
  [ "$busy" = 0 ] && { os_base=$b; break; }
done
[ -n "$os_base" ] || { echo "objectstore: no free ports" >&2; return 1 2>/dev/null || exit 1; }
"$weed" server -s3 -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$os_dir" \
  -master.port=$os_base -master.port.grpc=$((os_base + 1)) \
  -volume.port=$((os_base + 2)) -volume.port.grpc=$((os_base + 3)) \
  -filer.port=$((os_base + 4)) -filer.port.grpc=$((os_base + 5)) \
  -s3.port=$((os_base + 6)) -s3.port.grpc=$((os_base + 7)) \
  -s3.port.iceberg=0 -s3.port.lance=0 -volume.max=8 > "$os_dir/weed.log" 2>&1 &
export DOCCHAT_OBJECTSTORE_PID=$!
export AWS_ENDPOINT="http://127.0.0.1:$((os_base + 6))"
export AWS_ACCESS_KEY_ID=docchat AWS_SECRET_ACCESS_KEY=docchat-local AWS_REGION=us-east-1
export AWS_ALLOW_HTTP=true AWS_EC2_METADATA_DISABLED=true
for _ in $(seq 1 180); do
  curl -fs -o /dev/null "$AWS_ENDPOINT/" && break
  sleep 0.5
done
curl -fs -o /dev/null "$AWS_ENDPOINT/" || { echo "objectstore: SeaweedFS did not start (see $os_dir/weed.log)" >&2; return 1 2>/dev/null || exit 1; }
curl -fs -o /dev/null -X PUT "$AWS_ENDPOINT/docchat"
echo "objectstore: S3 at $AWS_ENDPOINT, bucket docchat, data in $os_dir (pid $DOCCHAT_OBJECTSTORE_PID)" >&2
