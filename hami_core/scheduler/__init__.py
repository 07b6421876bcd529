"""The scheduler service: kube-scheduler extender (`/filter`, `/bind`), pod mutating webhook,
usage informer, node register loop and leader election. See docs/scheduler.md.
"""

from hami_core.scheduler.bind import BindVerb
from hami_core.scheduler.filtering import FilterVerb
from hami_core.scheduler.informer import Informer
from hami_core.scheduler.leader import LeaderElector
from hami_core.scheduler.metrics import SchedulerMetrics
from hami_core.scheduler.register import RegisterLoop
from hami_core.scheduler.schedconfig import scheduler_configuration
from hami_core.scheduler.service import RunningServer, SchedulerService
from hami_core.scheduler.settings import SchedulerSettings
from hami_core.scheduler.tls import ReloadingTLS
from hami_core.scheduler.webhook import Webhook

__all__ = [
    "BindVerb",
    "FilterVerb",
    "Informer",
    "LeaderElector",
    "RegisterLoop",
    "ReloadingTLS",
    "RunningServer",
    "SchedulerMetrics",
    "SchedulerService",
    "SchedulerSettings",
    "Webhook",
    "scheduler_configuration",
]
