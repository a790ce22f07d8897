# The serving image: the app with the bundled model. No TensorFlow: the model runs through LiteRT.
#   make image                        # from python:3.11-slim (a registry)
#   BASE=debian-local make image      # no registry reachable: a Debian base made from Debian's packages
# Run: docker run -p 7860:7860 heartbeat   (add -e HEARTBEAT_AUTH=user:password before exposing it)
ARG BASE=python:3.11-slim
FROM ${BASE}

# Build time only: pip trusts the system's certificate store, so a base with a site's CA added works too.
ARG PIP_CERT=/etc/ssl/certs/ca-certificates.crt
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 GRADIO_ANALYTICS_ENABLED=False \
    VIRTUAL_ENV=/opt/heartbeat PATH=/opt/heartbeat/bin:$PATH
RUN python3 -m venv /opt/heartbeat && useradd --create-home clinic

# The package (the bundled model is its package data) and what serving needs, nothing else.
COPY pyproject.toml README.md /src/
COPY heartbeat /src/heartbeat
# In the same layer: the installers and the dependencies' own test suites (~80 MB) are not needed to serve.
RUN pip install --no-cache-dir "/src[app]" && rm -rf /src /root/.cache \
    && find /opt/heartbeat/lib -depth -type d -name tests -path "*/site-packages/*" -exec rm -rf {} + \
    && pip uninstall -q -y pip setuptools

WORKDIR /home/clinic
COPY app.py ./
USER clinic

EXPOSE 7860
# Inside a container the app must listen on all interfaces; publish it only where it should be reached.
CMD ["python", "app.py", "--host", "0.0.0.0", "--port", "7860"]
