"""The team adapter for :mod:`organizations`: seats instead of byok's memberships."""

from byok.models import TeamRole
from byok.teams import TeamAdapter
from organizations.models import Seat


class SeatAdapter(TeamAdapter):
    membership_model = "organizations.Seat"
    user_field = "person"
    team_field = "organization"

    def role_of(self, user, team):
        seat = Seat.objects.filter(person=user, organization=team).first()
        if seat is None:
            return None
        return TeamRole.ADMIN if seat.is_admin else TeamRole.MEMBER

    def teams_of(self, user):
        seats = Seat.objects.filter(person=user).select_related("organization")
        return [(seat.organization, self.role_of(user, seat.organization)) for seat in seats]

    def members_of(self, team):
        seats = Seat.objects.filter(organization=team).select_related("person")
        return [(seat.person, self.role_of(seat.person, team)) for seat in seats]
