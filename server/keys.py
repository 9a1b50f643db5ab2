"""Typed application keys (aiohttp AppKey), all in one place."""

from __future__ import annotations

from aiohttp import web

from jitsuin.server.acme.service import AcmeService
from jitsuin.server.authority import Authority
from jitsuin.server.est.service import Reenrollment
from jitsuin.server.ra.service import RAService

AUTHORITY = web.AppKey("authority", Authority)
RA = web.AppKey("ra", RAService)
REENROLLMENT = web.AppKey("reenrollment", Reenrollment)
ACME = web.AppKey("acme", AcmeService)
