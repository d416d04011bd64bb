# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ITIRP_VAR_DIR=/app/var
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --system --uid 10001 itirp && mkdir -p /app/var && chown -R itirp /app/var
USER itirp
EXPOSE 8000
CMD ["python", "-m", "itirp.serve", "--bind", "0.0.0.0:8000"]
