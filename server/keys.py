"""Typed application keys (aiohttp AppKey), all in one place. The services are named for the
type checker only, so that a front end reading a key imports no other front end."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from jitsuin.server.authority import Authority

if TYPE_CHECKING:
    from jitsuin.server.acme.service import AcmeService
    from jitsuin.server.est.service import Reenrollment
    from jitsuin.server.ra.service import RAService

AUTHORITY = web.AppKey("authority", Authority)
RA: web.AppKey[RAService] = web.AppKey("ra")
REENROLLMENT: web.AppKey[Reenrollment] = web.AppKey("reenrollment")
ACME: web.AppKey[AcmeService] = web.AppKey("acme")
