#!/usr/bin/env bash
# Fetch the upstream CRD schemas the tests validate against, unchanged, at the pinned tags.
# The files are named <project>-v<version>_<upstream file name>, as in ../shared/crds.
set -euo pipefail
dest=${1:?usage: fetch_crds.sh DIR}
mkdir -p "$dest"
raw=https://raw.githubusercontent.com
fetch() { # name url
  [ -s "$dest/$1" ] && return 0
  curl --fail --silent --show-error --location --retry 3 -o "$dest/$1" "$2"
  echo "fetched $1"
}
kr=v1.7.0 kp=v1.14.1 po=v0.93.1
for f in ray.io_rayservices ray.io_rayclusters; do
  fetch "kuberay-${kr}_$f.yaml" "$raw/ray-project/kuberay/$kr/ray-operator/config/crd/bases/$f.yaml"
done
for f in karpenter.sh_nodepools karpenter.k8s.aws_ec2nodeclasses; do
  fetch "karpenter-${kp}_$f.yaml" "$raw/aws/karpenter-provider-aws/$kp/pkg/apis/crds/$f.yaml"
done
for f in podmonitors servicemonitors prometheusrules; do
  fetch "prometheus-operator-${po}_$f.yaml" \
    "$raw/prometheus-operator/prometheus-operator/$po/example/prometheus-operator-crd/monitoring.coreos.com_$f.yaml"
done
ls "$dest"
