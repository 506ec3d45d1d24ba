# syntax=docker/dockerfile:1
# A static reliabilityd on an empty (scratch) image, running as nobody (65534).
#
#   docker build -t reliabilityd \
#     --build-arg VERSION="$(git describe --tags --always --dirty)" \
#     --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg BRANCH="$(git rev-parse --abbrev-ref HEAD)" \
#     --build-arg BUILD_USER="$(id -un)@$(hostname)" \
#     --build-arg BUILD_DATE="$(date -u +%Y%m%d-%H:%M:%S)" .
#   docker run -p 10089:10089 -v reliabilityd-data:/data reliabilityd
#
# The build stage runs on the builder's platform and cross-compiles for the
# target (docker buildx build --platform linux/amd64,linux/arm64 ...): with
# cgo off, Go needs no emulator and no C toolchain.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
ARG VERSION=unknown
ARG REVISION=unknown
ARG BRANCH=unknown
ARG BUILD_USER=unknown
ARG BUILD_DATE=unknown
# CGO_ENABLED=0: a static binary that runs on scratch (the pure-Go DNS
# resolver, no libc). -trimpath: no build paths in the binary. The version
# variables are those promu stamps; they fill --version and
# reliabilityd_build_info. -buildvcs=false: .git is not in the context
# (.dockerignore), and REVISION says what VCS stamping would.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false \
      -ldflags "-X github.com/prometheus/common/version.Version=${VERSION} \
                -X github.com/prometheus/common/version.Revision=${REVISION} \
                -X github.com/prometheus/common/version.Branch=${BRANCH} \
                -X github.com/prometheus/common/version.BuildUser=${BUILD_USER} \
                -X github.com/prometheus/common/version.BuildDate=${BUILD_DATE}" \
      -o /rootfs/bin/reliabilityd ./cmd/reliabilityd
# What scratch lacks: CA certificates for HTTPS probes, the time zone
# database for the configuration's timezone fields (Go's own copy, read
# through ZONEINFO), and a passwd/group entry so that user 65534 has a name.
# /data is made apart from /rootfs: it must belong to 65534, and COPY sets
# owners per instruction.
RUN mkdir -p /rootfs/etc/ssl/certs /rootfs/usr/share /data \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && cp "$(go env GOROOT)/lib/time/zoneinfo.zip" /rootfs/usr/share/zoneinfo.zip \
 && echo 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' > /rootfs/etc/passwd \
 && echo 'nobody:x:65534:' > /rootfs/etc/group

FROM scratch
COPY --from=build /rootfs/ /
COPY --from=build --chown=65534:65534 /data /data
ENV ZONEINFO=/usr/share/zoneinfo.zip
USER 65534:65534
EXPOSE 10089
# The durable state (docs/state.md); one daemon per volume.
VOLUME /data
ENTRYPOINT ["/bin/reliabilityd"]
CMD ["--storage.path=/data"]
