"""The records OrderHub owns, one module per aggregate; importing this registers them all."""

from hub.core.models.audit import AuditEntry
from hub.core.models.care import CareOptOut, CareSend, Review, ReviewPhoto, TicketSurvey
from hub.core.models.catalog import Product, Warehouse
from hub.core.models.events import Event, NotificationDelivery, NotifierState
from hub.core.models.intake import Connection, InboxEntry, SkuMapping
from hub.core.models.inventory import StockLedger, StockLevel
from hub.core.models.logistics import (
    CarrierAccount,
    DeliveryException,
    Shipment,
    ShipmentItem,
    ShipmentPurchase,
    TrackingEventRecord,
)
from hub.core.models.operations import WorkerHeartbeat
from hub.core.models.orders import Allocation, Customer, Order, OrderHistory, OrderLine
from hub.core.models.reports import (
    ReportCarrierDay,
    ReportOrderDay,
    ReportPlaceDay,
    ReportProductDay,
    ReportProductMonth,
    ReportRefresh,
    ReportWarehouseDay,
)
from hub.core.models.returns import Refund, Return, ReturnLine, ReturnReceipt
from hub.core.models.tenancy import ApiToken, Counter, Tenant, TenantScoped, User
from hub.core.models.tickets import (
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketLine,
    TicketMessage,
)
from hub.core.models.web import PortalLink, SavedView

__all__ = [
    "Allocation",
    "ApiToken",
    "AuditEntry",
    "CareOptOut",
    "CareSend",
    "CarrierAccount",
    "Connection",
    "Counter",
    "Customer",
    "DeliveryException",
    "Event",
    "InboxEntry",
    "NotificationDelivery",
    "NotifierState",
    "Order",
    "OrderHistory",
    "OrderLine",
    "PortalLink",
    "Product",
    "Refund",
    "ReportCarrierDay",
    "ReportOrderDay",
    "ReportPlaceDay",
    "ReportProductDay",
    "ReportProductMonth",
    "ReportRefresh",
    "ReportWarehouseDay",
    "Return",
    "ReturnLine",
    "ReturnReceipt",
    "Review",
    "ReviewPhoto",
    "SavedView",
    "Shipment",
    "ShipmentItem",
    "ShipmentPurchase",
    "SkuMapping",
    "StockLedger",
    "StockLevel",
    "Tenant",
    "TenantScoped",
    "Ticket",
    "TicketAttachment",
    "TicketEvent",
    "TicketLine",
    "TicketMessage",
    "TicketSurvey",
    "TrackingEventRecord",
    "User",
    "Warehouse",
    "WorkerHeartbeat",
]
