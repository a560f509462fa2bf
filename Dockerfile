# syntax=docker/dockerfile:1

# The dashboard as a container image: one static binary on distroless, run as a non-root user,
# with everything it writes in the /data volume, so the root filesystem can be read-only.
#
#   docker build -t tensfer-dashboard .
#   docker run -d --name dashboard --read-only -p 127.0.0.1:8080:8080 -v dashboard-data:/data \
#     -e DASHBOARD_PUBLIC_URL=https://dashboard.example.com tensfer-dashboard
#
# Build from a git clone: the .git directory (kept in the build context on purpose) stamps the
# commit into the binary, which `dashboard version`, the sidebar and /healthz show.
# packaging/docker-compose.yml runs it behind Caddy; docs/operations.md covers the rest.

# The toolchain go.mod names and CI builds with; GOTOOLCHAIN holds the build to it. For builds
# that must not change under you, add the image digest: golang:1.27.3-bookworm@sha256:...
FROM golang:1.27.3-bookworm AS build
ENV GOTOOLCHAIN=go1.27.3 CGO_ENABLED=0 GOFLAGS=
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# The flags of scripts/release (cmd/dashboard/packaging_test.go builds with exactly this line):
# a static binary with no path of the build machine and no build id in it.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -buildvcs=auto -ldflags="-s -w -buildid=" -o /out/dashboard ./cmd/dashboard
# The data directory, owner-only and owned by the user the dashboard runs as (distroless's
# nonroot, 65532); a new named volume mounted there starts as a copy of it.
RUN install -d -m 0700 -o 65532 -g 65532 /out/rootfs/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dashboard /usr/local/bin/dashboard
COPY --from=build --chown=65532:65532 /out/rootfs/ /
USER 65532:65532
ENV DASHBOARD_ADDR=:8080 DASHBOARD_DATA=/data
VOLUME /data
EXPOSE 8080
# The image has no shell and no curl: the binary asks its own /healthz (port from DASHBOARD_ADDR).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/dashboard", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/dashboard"]
CMD ["serve"]
