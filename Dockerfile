# Meridian gateway image: a static binary on distroless, running as the
# non-root user nonroot (65532).
#
#   docker build -t meridian --build-arg VERSION=$(git describe --tags --always) .
#   docker run --rm -p 8700:8700 meridian agent --region us-east
#
# The image sets MERIDIAN_HTTP=0.0.0.0:8700 and MERIDIAN_SERF_BIND=0.0.0.0:7946
# (the defaults bind 127.0.0.1, unreachable from outside a container); in a
# federation also set --http-advertise and --serf-advertise to addresses the
# other gateways can reach. Configuration: flags, MERIDIAN_* variables, or a
# YAML file mounted at /etc/meridian/meridian.yaml with --config.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
RUN pkg=github.com/meridian-sd/meridian/internal/buildinfo && \
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X $pkg.version=$VERSION -X $pkg.commit=$COMMIT -X $pkg.date=$DATE" \
      -o /out/meridian ./cmd/meridian

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/meridian /usr/local/bin/meridian
USER nonroot:nonroot
ENV MERIDIAN_HTTP=0.0.0.0:8700 \
    MERIDIAN_SERF_BIND=0.0.0.0:7946 \
    MERIDIAN_LOG_FORMAT=json
EXPOSE 8700/tcp 7946/tcp 7946/udp
ENTRYPOINT ["/usr/local/bin/meridian"]
CMD ["agent", "--help"]
