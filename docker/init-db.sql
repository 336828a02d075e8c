-- Hookline's own database beside Temporal's (auto-setup creates temporal and temporal_visibility).
CREATE DATABASE hookline;
