"""Experimental APIs, mirroring ``inngest.experimental``: AI steps and realtime."""
