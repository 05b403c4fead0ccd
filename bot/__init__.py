"""Debt-help chatbot runtime: settings, retrieval, answering, dialogue, front ends."""
