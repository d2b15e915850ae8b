# The one armada image: every role of the Helm chart and of docker-compose.yml runs it
# (`armada serve --roles <role>`), and so do the agent pods (`armada agent`).
#
#   docker build -t armadasvc/armada:latest -t armadasvc/armada-agent:latest .

# ---- build: the release binary
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY migrations ./migrations
COPY python ./python
COPY static ./static
RUN cargo build --release --locked --bin armada

# ---- runtime: the binary, Python 3 for Python workers, CA certificates for TLS
FROM debian:bookworm-slim
# Debian's stable packages are what we want; pinning exact versions would break on every point release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv python3-pip \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/armada armada
COPY --from=build /src/target/release/armada /usr/local/bin/armada
USER 10001
WORKDIR /var/lib/armada
EXPOSE 8080 8000 5001 5005
ENTRYPOINT ["armada"]
# Inside a container the default loopback address is unreachable: listen on every interface.
CMD ["serve", "--listen", "0.0.0.0:8080"]
