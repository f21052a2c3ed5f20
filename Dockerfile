FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# Translation engine (inbox.translation.ApertiumBackend) with its language pairs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends apertium apertium-eng-spa apertium-fr-es apertium-es-pt \
       apertium-spa-ita apertium-eng-cat libmagic1 \
    && rm -rf /var/lib/apt/lists/*

COPY pyproject.toml ./
RUN pip install --upgrade pip && pip install .
COPY . .
RUN DJANGO_DEBUG=1 python manage.py collectstatic --noinput

RUN useradd --create-home inbox && chown -R inbox /app
USER inbox
EXPOSE 8000
# Websocket frames and messages over 64 KiB are refused (ours are small JSON; docs/SECURITY.md).
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--websocket-max-message-size", "65536", "--websocket-max-frame-size", "65536", "marketplace.asgi:application"]
