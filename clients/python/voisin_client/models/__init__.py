"""Contains all the data models used in inputs/outputs"""

from .api_key_created import ApiKeyCreated
from .api_key_in import ApiKeyIn
from .api_key_in_scopes_item import ApiKeyInScopesItem
from .api_key_out import ApiKeyOut
from .api_keys_out import ApiKeysOut
from .audit_report_out import AuditReportOut
from .audit_report_out_checks import AuditReportOutChecks
from .audit_report_out_checks_additional_property import AuditReportOutChecksAdditionalProperty
from .audit_report_out_feeder_type_0 import AuditReportOutFeederType0
from .audit_report_out_neighbourhood_item import AuditReportOutNeighbourhoodItem
from .audit_report_out_summary import AuditReportOutSummary
from .balance import Balance
from .consent_out import ConsentOut
from .consents_out import ConsentsOut
from .credit_line import CreditLine
from .delivery_out import DeliveryOut
from .delivery_out_body import DeliveryOutBody
from .erasure_in import ErasureIn
from .erasure_out import ErasureOut
from .export_format import ExportFormat
from .finding_out import FindingOut
from .finding_out_evidence import FindingOutEvidence
from .forecast_hour_out import ForecastHourOut
from .forecast_out import ForecastOut
from .forecast_out_scope import ForecastOutScope
from .forecast_slot_out import ForecastSlotOut
from .household_created import HouseholdCreated
from .household_in import HouseholdIn
from .key_rotated import KeyRotated
from .list_bids_status_type_0 import ListBidsStatusType0
from .list_deliveries_status_type_0 import ListDeliveriesStatusType0
from .list_offers_status_type_0 import ListOffersStatusType0
from .meter_in import MeterIn
from .meter_rotated import MeterRotated
from .order_in import OrderIn
from .order_out import OrderOut
from .order_out_side import OrderOutSide
from .order_out_status import OrderOutStatus
from .page_delivery_out import PageDeliveryOut
from .page_order_out import PageOrderOut
from .page_trade import PageTrade
from .page_webhook_out import PageWebhookOut
from .problem import Problem
from .reading_in import ReadingIn
from .reading_verdict import ReadingVerdict
from .reading_verdict_status import ReadingVerdictStatus
from .readings_accepted import ReadingsAccepted
from .readings_in import ReadingsIn
from .slot_outcome import SlotOutcome
from .statement_response_statement import StatementResponseStatement
from .take_in import TakeIn
from .take_out import TakeOut
from .tariffs_out import TariffsOut
from .token_rotated import TokenRotated
from .top_up_in import TopUpIn
from .top_up_out import TopUpOut
from .trade import Trade
from .webhook_created import WebhookCreated
from .webhook_in import WebhookIn
from .webhook_in_event_types_item import WebhookInEventTypesItem
from .webhook_out import WebhookOut

__all__ = (
    "ApiKeyCreated",
    "ApiKeyIn",
    "ApiKeyInScopesItem",
    "ApiKeyOut",
    "ApiKeysOut",
    "AuditReportOut",
    "AuditReportOutChecks",
    "AuditReportOutChecksAdditionalProperty",
    "AuditReportOutFeederType0",
    "AuditReportOutNeighbourhoodItem",
    "AuditReportOutSummary",
    "Balance",
    "ConsentOut",
    "ConsentsOut",
    "CreditLine",
    "DeliveryOut",
    "DeliveryOutBody",
    "ErasureIn",
    "ErasureOut",
    "ExportFormat",
    "FindingOut",
    "FindingOutEvidence",
    "ForecastHourOut",
    "ForecastOut",
    "ForecastOutScope",
    "ForecastSlotOut",
    "HouseholdCreated",
    "HouseholdIn",
    "KeyRotated",
    "ListBidsStatusType0",
    "ListDeliveriesStatusType0",
    "ListOffersStatusType0",
    "MeterIn",
    "MeterRotated",
    "OrderIn",
    "OrderOut",
    "OrderOutSide",
    "OrderOutStatus",
    "PageDeliveryOut",
    "PageOrderOut",
    "PageTrade",
    "PageWebhookOut",
    "Problem",
    "ReadingIn",
    "ReadingsAccepted",
    "ReadingsIn",
    "ReadingVerdict",
    "ReadingVerdictStatus",
    "SlotOutcome",
    "StatementResponseStatement",
    "TakeIn",
    "TakeOut",
    "TariffsOut",
    "TokenRotated",
    "TopUpIn",
    "TopUpOut",
    "Trade",
    "WebhookCreated",
    "WebhookIn",
    "WebhookInEventTypesItem",
    "WebhookOut",
)
