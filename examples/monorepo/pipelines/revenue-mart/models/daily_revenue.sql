-- Daily totals per category and currency; the grain of the daily-revenue dataset.
select
    revenue_date,
    category,
    currency,
    count(*)                  as order_count,
    sum(amount)               as gross_revenue,
    sum(amount) - sum(cost)   as gross_margin
from {{ ref('order_lines') }}
group by revenue_date, category, currency
