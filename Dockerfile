# Multi-stage build: compile a release binary with the Swift runtime linked in statically, then run it as a
# non-root user on a slim Debian with only the shared C libraries it needs.
FROM swift:6.3-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libbrotli-dev zlib1g-dev libmaxminddb-dev libpcre2-dev liblz4-dev libnghttp2-dev pkg-config python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The crawler-user-agents list (PyPI), read at start with uap-core's regexes (a Debian package, below).
COPY scripts/fetch-crawler-list.py ./scripts/
RUN mkdir -p /out && python3 scripts/fetch-crawler-list.py /out/crawler-user-agents.json
COPY Package.swift ./
COPY Plugins ./Plugins
COPY Sources ./Sources
# The commit `vantage --version` names (the build context has no .git): docker build --build-arg VANTAGE_COMMIT=$(git describe --always --dirty)
ARG VANTAGE_COMMIT=unknown
ENV VANTAGE_COMMIT=$VANTAGE_COMMIT
COPY scripts/build-release.sh scripts/function-order.txt ./scripts/
RUN install -D "$(scripts/build-release.sh)" /out/vantage

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libbrotli1 zlib1g libmaxminddb0 libpcre2-8-0 liblz4-1 libnghttp2-14 uap-core ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/vantage --create-home vantage
COPY --from=build /out/vantage /usr/local/bin/vantage
COPY --from=build /out/crawler-user-agents.json /usr/local/share/vantage/crawler-user-agents.json
COPY conf /etc/vantage
COPY public /srv/www
# The shipped config serves public/ relative to the working directory; point it at the image's copy.
RUN sed -i -e "s#root: ../public#root: /srv/www#" -e "s#dir: ../data/spool#dir: /var/lib/vantage/data/spool#" /etc/vantage/vantage.yaml
USER vantage
WORKDIR /var/lib/vantage
# The event spool (tracking.spool.dir, data/spool): events not yet in ClickHouse must outlive the container; so must
# ACME accounts and certificates (tls.acme.storage, data/acme) and short links (data/links).
VOLUME /var/lib/vantage/data
EXPOSE 8080 8443
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/vantage"]
CMD ["run", "--config", "/etc/vantage/vantage.yaml"]
