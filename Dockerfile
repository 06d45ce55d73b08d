# The whispercms-server image: one binary, no git, no sshd; the same layout as the Debian
# package (settings in /etc/whispercms, data in /var/lib/whispercms, its own user).
#   docker build -t whispercms .
#   docker run --rm -i -v wcms-etc:/etc/whispercms -v wcms-data:/var/lib/whispercms whispercms \
#     whispercms-server init --admin-key - --domain example.org < ~/.ssh/id_ed25519.pub
#   docker run -d -p 2222:2222 -p 80:80 -v wcms-etc:/etc/whispercms -v wcms-data:/var/lib/whispercms whispercms
FROM rust:slim-bookworm AS build
WORKDIR /src
# cmake and g++ build zlib-ng for the Pingora ingress.
RUN apt-get update && apt-get install -y --no-install-recommends cmake g++ && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --bin whispercms-server

FROM debian:bookworm-slim
COPY --from=build /src/target/release/whispercms-server /usr/bin/whispercms-server
RUN useradd --system --user-group --home-dir /var/lib/whispercms whispercms \
    && install -d -o whispercms -g whispercms -m 0750 /etc/whispercms /var/lib/whispercms
USER whispercms
VOLUME ["/etc/whispercms", "/var/lib/whispercms"]
EXPOSE 2222 80
CMD ["whispercms-server", "--config", "/etc/whispercms/settings.toml", "serve"]
