"""Driving the two pages' shared controls (the playground's and the exported one's) from
selenium: the prime box and the Randomness slider."""


def set_prime_and_randomness(browser, prime: str, randomness: float) -> None:
    from selenium.webdriver.common.by import By
    box = browser.find_element(By.ID, "prime")
    box.clear()
    box.send_keys(prime)
    browser.execute_script("const s = document.getElementById('randomness'); "
                           "s.value = arguments[0]; s.dispatchEvent(new Event('input'));",
                           randomness)
    assert browser.find_element(By.ID, "randomness-value").text == str(randomness)
