"""What runs when: celery beat entries, and the default schedules seeded into the schedules table."""
