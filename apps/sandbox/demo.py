"""The demo business that `manage.py seed_demo` puts in the default workspace: a bakery with a
bilingual profile, bilingual FAQs and a sandbox number to chat with it."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from apps.accounts.models import Workspace
from apps.assistant import services as assistant
from apps.assistant.models import KnowledgeEntry
from apps.whatsapp.models import Channel

SOURCE = "seed_demo"
SANDBOX_PHONE_NUMBER_ID = "sandbox-1"
SANDBOX_DISPLAY_NUMBER = "15550000000"

PROFILE = {
    "name": "Panadería La Espiga",
    "description": (
        "Panadería artesana de barrio en Madrid desde 1987: pan de masa madre, bollería y tartas por encargo. "
        "A neighbourhood artisan bakery in Madrid since 1987: sourdough bread, pastries and cakes to order."
    ),
    "tone": "cercano y amable / warm and friendly",
    "languages": ["es", "en"],
    "opening_hours": {
        "mon": [["08:00", "14:00"], ["17:00", "20:30"]],
        "tue": [["08:00", "14:00"], ["17:00", "20:30"]],
        "wed": [["08:00", "14:00"], ["17:00", "20:30"]],
        "thu": [["08:00", "14:00"], ["17:00", "20:30"]],
        "fri": [["08:00", "14:00"], ["17:00", "20:30"]],
        "sat": [["08:00", "14:30"]],
        "sun": [],
    },
    "timezone": "Europe/Madrid",
    "address": "Calle del Trigo 12, 28004 Madrid",
    "handoff_policy": (
        "Pasa con una persona los encargos de más de 20 piezas, las quejas y las alergias graves. "
        "Hand over to a person for orders over 20 items, complaints and serious allergies."
    ),
    "disclosure_text": (
        "Soy el asistente virtual de Panadería La Espiga; si prefieres hablar con una persona, escribe «agente». "
        "I'm La Espiga's virtual assistant; write 'agent' to talk to a person."
    ),
}

FAQS: list[tuple[str, str, str]] = [
    (
        "es",
        "¿A qué hora abrís? ¿Cuál es el horario?",
        "Abrimos de lunes a viernes de 8:00 a 14:00 y de 17:00 a 20:30, y los sábados de 8:00 a 14:30. "
        "Los domingos cerramos.",
    ),
    (
        "en",
        "What are your opening hours? When are you open?",
        "We are open Monday to Friday 8:00-14:00 and 17:00-20:30, and Saturdays 8:00-14:30 (Madrid time). "
        "Closed on Sundays.",
    ),
    (
        "es",
        "¿Dónde estáis? ¿Cuál es la dirección?",
        "Estamos en la Calle del Trigo 12, 28004 Madrid (metro Tribunal).",
    ),
    (
        "en",
        "Where are you? What is your address?",
        "We are at Calle del Trigo 12, 28004 Madrid (Tribunal metro).",
    ),
    (
        "es",
        "¿Hacéis tartas por encargo?",
        "Sí: tartas de cumpleaños y de boda por encargo con 48 horas de antelación. Dinos sabor, tamaño y fecha.",
    ),
    (
        "en",
        "Do you make cakes to order?",
        "Yes: birthday and wedding cakes to order with 48 hours' notice. Tell us the flavour, size and date.",
    ),
    (
        "es",
        "¿Tenéis pan sin gluten?",
        "Tenemos pan y magdalenas sin gluten los martes y viernes, hechos en un obrador separado.",
    ),
    (
        "en",
        "Do you have gluten-free bread?",
        "We bake gluten-free bread and muffins on Tuesdays and Fridays, in a separate kitchen.",
    ),
    (
        "es",
        "¿Hacéis envíos a domicilio?",
        "Repartimos a domicilio en el centro de Madrid para pedidos desde 15 €; el envío cuesta 3 €.",
    ),
    (
        "en",
        "Do you deliver?",
        "We deliver in central Madrid for orders from 15 €; delivery costs 3 €.",
    ),
    ("es", "¿Puedo pagar con tarjeta o Bizum?", "Sí, aceptamos efectivo, tarjeta y Bizum."),
    ("en", "Can I pay by card?", "Yes, we take cash, cards and Bizum."),
]


@dataclass
class SeedReport:
    profile: str = "kept"
    faqs_created: int = 0
    channel: str = "kept"
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"demo profile {self.profile}",
            f"demo FAQs: {self.faqs_created} created",
            f"sandbox channel {SANDBOX_PHONE_NUMBER_ID} {self.channel}",
            *self.notes,
        ]


@transaction.atomic
def demo_seed(*, workspace: Workspace) -> SeedReport:
    """Idempotent. The profile is written only while it is still the untouched default (so a business
    the user set up is left alone); FAQs are added by question; the sandbox channel only when absent,
    except that its app secret follows SANDBOX_APP_SECRET (the stand-in signs with that one)."""
    report = SeedReport()
    profile = assistant.profile_get_or_create(workspace_id=workspace.pk)
    if profile.name in ("", workspace.name) and not profile.description:
        assistant.profile_update(workspace_id=workspace.pk, **PROFILE)
        report.profile = "written"
    existing = set(
        KnowledgeEntry.objects.filter(workspace=workspace, source=SOURCE).values_list("language", "title")
    )
    for language, question, answer in FAQS:
        if (language, question) not in existing:
            assistant.knowledge_create(
                workspace_id=workspace.pk, title=question, content=answer, language=language, source=SOURCE
            )
            report.faqs_created += 1
    report.channel = _sandbox_channel_ensure(workspace=workspace, report=report)
    return report


def _sandbox_channel_ensure(*, workspace: Workspace, report: SeedReport) -> str:
    secret = settings.SANDBOX_APP_SECRET
    channel = Channel.objects.filter(phone_number_id=SANDBOX_PHONE_NUMBER_ID).first()
    if channel is not None:
        if channel.workspace_id != workspace.pk or channel.kind != Channel.Kind.SANDBOX:
            report.notes.append(
                f"warning: phone_number_id {SANDBOX_PHONE_NUMBER_ID} belongs to another channel"
            )
            return "left alone"
        if secret and channel.app_secret != secret:
            channel.app_secret = secret
            channel.save(update_fields=["app_secret"])
            return "kept (app secret updated from SANDBOX_APP_SECRET)"
        return "kept"
    if not secret:
        report.notes.append("SANDBOX_APP_SECRET is not set: no sandbox channel (development generates one)")
        return "not created"
    Channel.objects.create(
        workspace=workspace,
        kind=Channel.Kind.SANDBOX,
        name="Sandbox",
        phone_number_id=SANDBOX_PHONE_NUMBER_ID,
        display_phone_number=SANDBOX_DISPLAY_NUMBER,
        app_secret=secret,
        access_token="sandbox-token",  # noqa: S106 - the stand-in accepts any token
    )
    return "created"
