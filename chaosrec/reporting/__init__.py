"""Drill reports: Allure results, timeline charts, SLO tables and the drill summary."""
