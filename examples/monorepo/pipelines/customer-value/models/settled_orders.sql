-- Orders that count towards lifetime value: paid or shipped, never refunded or cancelled.
select
    order_id,
    customer_id,
    amount,
    ordered_at
from {{ source('staging', 'orders') }}
where status in ('paid', 'shipped')
