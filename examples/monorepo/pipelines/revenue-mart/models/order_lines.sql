-- Revenue-bearing orders joined to their product, one row per order.
select
    o.order_id,
    cast(o.ordered_at as date)      as revenue_date,
    coalesce(p.category, 'unknown') as category,
    o.currency,
    o.amount,
    o.quantity * coalesce(p.unit_cost, 0) as cost
from {{ source('staging', 'orders') }} as o
left join {{ source('staging', 'products') }} as p
    on p.product_id = o.product_id
where o.status in ('paid', 'shipped')
