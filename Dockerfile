# syntax=docker/dockerfile:1

# --- app-build: a virtualenv with the dependencies, then the project itself ---------------
FROM python:3.11-slim AS app-build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app

# The dependencies first, from pyproject.toml alone, so that a change of code reuses this layer.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt

# An editable install: alembic.ini and migrations/ are found next to the `app` package.
COPY README.md alembic.ini ./
COPY migrations ./migrations
COPY app ./app
RUN pip install --no-deps -e . \
    && python -m compileall -q app migrations \
    && DATA_DIR=/tmp/data automation openapi --output /tmp/openapi.json

# --- web-build: the dashboard, its API types generated from the OpenAPI document ----------
FROM node:22-slim AS web-build

WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
COPY --from=app-build /tmp/openapi.json ./openapi.json
# Vite writes the build to ../app/web, where the API serves it from.
RUN npm run gen:api && npm run build

# --- runtime ----------------------------------------------------------------------------------
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/data

RUN groupadd --system --gid 1000 automation \
    && useradd --system --uid 1000 --gid automation --home-dir /app --no-create-home automation \
    && mkdir /data \
    && chown automation:automation /data

COPY --from=app-build /opt/venv /opt/venv
COPY --from=app-build /app /app
COPY --from=web-build /src/app/web /app/app/web
WORKDIR /app
USER automation

EXPOSE 8000
VOLUME ["/data"]

CMD ["automation", "api"]
