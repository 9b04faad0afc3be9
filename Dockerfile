# Palisade's images: one target per binary, each the release binary with only the runtime
# files it needs (glibc, libgcc, CA certificates, a passwd entry for 65532; the agent also
# libelf and zlib, in its own layer). No shell, no
# package manager; runs as 65532 and with a read-only root filesystem.
#
#   docker build --target palisade-operator -t palisade-operator .
#   docker build --target palisade-webhook  -t palisade-webhook .
#   docker build --target palisade          -t palisade .
#   docker build --target palisade-agent    -t palisade-agent .
#
# `make images` builds the same targets with buildah from binaries built on the machine,
# handing hack/image-rootfs.sh's output in as the `rootfs` stage
# (--build-context rootfs=target/image-rootfs), so that no base image is pulled.

ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# The agent's kernel programs are compiled by clang; libbpf needs libelf and zlib.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      clang llvm libelf-dev zlib1g-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p palisade-operator -p palisade-webhook -p palisade-cli -p palisade-agent \
 && hack/image-rootfs.sh target/release /rootfs palisade-operator palisade-webhook palisade palisade-agent

FROM scratch AS rootfs
COPY --from=build /rootfs/ /

FROM scratch AS runtime
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.source="https://github.com/palisade-dev/palisade" \
      org.opencontainers.image.url="https://github.com/palisade-dev/palisade" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Palisade" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=rootfs /base/ /
USER 65532:65532

FROM runtime AS palisade-operator
LABEL org.opencontainers.image.title="palisade-operator" \
      org.opencontainers.image.description="Palisade operator: policies' status, webhook registration and certificates, audit, image scanning"
COPY --from=rootfs /image/palisade-operator/ /
ENTRYPOINT ["/usr/local/bin/palisade-operator"]

FROM runtime AS palisade-webhook
LABEL org.opencontainers.image.title="palisade-webhook" \
      org.opencontainers.image.description="Palisade validating admission webhook"
COPY --from=rootfs /image/palisade-webhook/ /
ENTRYPOINT ["/usr/local/bin/palisade-webhook"]

FROM runtime AS palisade
LABEL org.opencontainers.image.title="palisade" \
      org.opencontainers.image.description="Palisade CLI: check workloads against policies, scan images"
COPY --from=rootfs /image/palisade/ /
ENTRYPOINT ["/usr/local/bin/palisade"]

# The node agent. The image runs as 65532 like the others; the DaemonSet the operator
# writes runs it as root with only the capabilities it needs (see the chart's agent values).
FROM runtime AS palisade-agent
LABEL org.opencontainers.image.title="palisade-agent" \
      org.opencontainers.image.description="Palisade node agent: eBPF runtime threat detection for the containers of one node"
COPY --from=rootfs /image/palisade-agent/ /
ENTRYPOINT ["/usr/local/bin/palisade-agent"]
