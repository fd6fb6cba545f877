-- One row per customer with at least one settled order; the customer-ltv dataset.
select
    customer_id,
    min(ordered_at)              as first_order_at,
    max(ordered_at)              as last_order_at,
    count(*)                     as order_count,
    sum(amount)                  as lifetime_value,
    round(avg(amount), 2)        as avg_order_value
from {{ ref('settled_orders') }}
group by customer_id
