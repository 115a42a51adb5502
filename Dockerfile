# One image for every okxlab process (workers, beat, Flower, the simulator, migrations, metrics).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md celeryconfig.py alembic.ini ./
COPY okxlab okxlab
COPY workers workers
COPY schedules schedules
COPY migrations migrations
RUN pip install --no-cache-dir . && useradd --system --home /app okxlab
USER okxlab
