"""How TaskFlow reads dates, times and changes: one list, followed by the offline interpreter and shown to Gemini.

docs/conventions.md explains each line; tests check that the document and Gemini's instructions carry all of them.
"""

CONVENTIONS = (
    "A bare weekday, 'this friday' and 'next friday' mean the first such day after today: 'next tuesday' said on "
    "a Monday is the next day.",
    "'next week' is the Monday of the next week; 'this weekend' is the first Saturday on or after today, "
    "'next weekend' the one after.",
    "'end of the week' and 'eow' are the coming Friday (today, on a Friday), 'end of next week' the Friday after; "
    "'end of the month' is its last day; 'a fortnight' is two weeks; 'in a couple of days' is two days, 'in a few "
    "days' three.",
    "'morning' is 09:00, 'afternoon' 15:00, 'evening' 19:00, 'tonight' and 'night' 20:00; 'end of day' and "
    "'eod' are 17:00 of that day.",
    "An hour said with 'morning', before or after it, is before noon ('7 in the morning' and 'tomorrow morning "
    "at 7' are 07:00); with 'afternoon', 'evening', 'night' or 'tonight' it is after noon ('tonight at 9' and "
    "'every evening at 9' are 21:00); a bare 'at 5' is 17:00.",
    "A reminder on an all-day task goes off at 09:00 of its day; 'an hour before' counts back from the due time.",
    "Moving a task by an amount ('forward by two days', 'delay by a month') moves its due date and keeps its time "
    "of day; a task without a due date is moved from today.",
    "'less important' and 'more urgent' move the priority one step between low, medium and high.",
)
